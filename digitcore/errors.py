"""Errors about a client's image, one class per kind of problem (each maps to one HTTP status)."""


class ImageInputError(ValueError):
    """Something wrong with a client's image; the message says what, for the client."""


class UnsupportedImageError(ImageInputError):
    """Not an image, or a format we do not accept."""


class CorruptImageError(ImageInputError):
    """A recognised format whose data is damaged or truncated."""


class ImageTooLargeError(ImageInputError):
    """More pixels than allowed (decompression-bomb guard)."""


class NoDigitFoundError(ImageInputError):
    """The image holds no ink: a blank page, a flat colour."""


class SpecksOnlyError(NoDigitFoundError):
    """The image holds only specks of ink, nothing the size of a digit."""


class TooManyDigitsError(ImageInputError):
    """A picture of a number that holds more digits than one reading allows."""
