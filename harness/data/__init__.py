"""Data: image decoding, EXIF reading, dataset layouts, the catalogue and the offline zoo."""
