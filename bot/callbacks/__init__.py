"""Random call-backs (回访): the weekly draw, the call sheet, and recording what was said."""
