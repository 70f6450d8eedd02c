"""One reader per source format. Each turns a dataset folder or file into Manifest rows."""
