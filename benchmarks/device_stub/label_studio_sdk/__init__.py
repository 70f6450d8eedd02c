"""A stand-in for label-studio-sdk on a machine without it (benchmarks/device_check.py only).

Only ``label_studio_sdk.label_interface.LabelInterface`` as far as core/labels.py reads it: the
control tags with their names, the object tags they point at and their ``<Label>`` children. It is
put on PYTHONPATH only when the real SDK cannot be imported, and the report says so.
"""
