"""napari-sam2: Segment Anything 2 for napari."""
