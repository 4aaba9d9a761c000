"""Exceptions raised by svac.

Every error svac raises on bad input derives from :class:`SVACError`, so a
caller can catch the library's own failures apart from bugs. Each subclass
also derives from the closest built-in exception (``ValueError``,
``FileNotFoundError`` ...) so generic handlers keep working.
"""

from __future__ import annotations


class SVACError(Exception):
    """Base class of every error svac raises on purpose."""


class ConfigError(SVACError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class VideoReadError(SVACError, ValueError):
    """A video (file, frame folder or frame list) cannot be read.

    Raised for unreadable or corrupt files, empty videos, unsupported
    extensions and frames of mixed sizes. The message names the path.
    """


class OutputExistsError(SVACError, FileExistsError):
    """An output folder already holds results and overwriting was not asked for."""


class OutputLockedError(SVACError, FileExistsError):
    """Another svac run is writing the same output folder (the message names its process)."""


class OutputWriteError(SVACError, OSError):
    """An output cannot be written: no permission, a read-only or full file system.

    The message names the output and says what it holds after the failure (its previous
    contents, or nothing).
    """


class SegCountError(SVACError, ValueError):
    """The number of ``[SEG]`` tokens disagrees with the number of clips (SVAC §3.4, CSA).

    Attributes:
        found: number of ``[SEG]`` tokens found in the answer.
        expected: number of clips that needed one.
    """

    def __init__(self, message: str, *, found: int, expected: int) -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected


class AnnotationError(SVACError, ValueError):
    """A dataset annotation is missing, malformed or inconsistent; the message names the file."""


class CheckpointError(SVACError, ValueError):
    """A checkpoint folder or file is missing, truncated, or does not match the model."""


class MissingExtraError(SVACError, ImportError):
    """An optional feature needs a package that is not installed; the message gives the install command."""


#: Errors that mean "bad input" (reported to the user as one line, not as a crash): what the
#: command line turns into ``svac: error: ...`` and the demo page into an error message.
INPUT_ERRORS: tuple[type[BaseException], ...] = (SVACError, FileNotFoundError, FileExistsError, ValueError)
