"""The image formats the pipeline reads, named in one place for its checks and its messages.

Pillow reads most of them itself, AVIF included; HEIC/HEIF, what iPhones and many Android
phones save their photos as, comes from ``pillow-heif``, registered with Pillow here, so that
every reader of an upload (the service, the command-line predictor, the benchmarks) takes a
phone's photo as it is. libheif applies the picture's own rotation and mirroring as it
decodes, and ``pillow-heif`` then drops the EXIF orientation, so it is never applied twice.
"""

from __future__ import annotations

import pillow_heif

pillow_heif.register_heif_opener()

# Pillow's names for them (``Image.format``): MPO is a camera's JPEG with a second frame.
SUPPORTED_FORMATS = frozenset(
    {"PNG", "JPEG", "MPO", "GIF", "BMP", "DIB", "TIFF", "WEBP", "HEIF", "AVIF"}
)
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, TIFF, WebP, HEIC/HEIF or AVIF"  # what messages say
IMAGE_EXTENSIONS = frozenset(  # the files a folder given to the predictor is searched for
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
    | {".webp", ".heic", ".heif", ".hif", ".avif"}
)
