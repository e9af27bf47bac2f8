"""The web desk for coordinators, grid leaders and the command centre (under /desk/)."""
