"""Label Studio as the annotation source and sink: project access, predictions, box queries."""
