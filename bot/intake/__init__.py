"""Reports in: is it a report and which category (classify, category), which ones open a
ticket (screen), and the writer that commits them in batches (writer, batch, lookups)."""
