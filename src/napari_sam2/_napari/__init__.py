"""napari integration of napari-sam2: dock widget, layer adapters, workers and sample data.

Reached through the plugin manifest (``napari.yaml``); importing this package itself pulls in
neither napari nor Qt.
"""
