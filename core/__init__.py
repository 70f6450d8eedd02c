"""The detection core shared by the backend and the pipelines.

Settings, the detector and its per-box features, image loading (paths, http, object stores,
data: URLs), the one path from an image to a per-frame acquisition value, and the Label Studio
prediction format. It imports `strategies` and nothing else of ours; `backend` and `pipelines`
import it and never each other.
"""
