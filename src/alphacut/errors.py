"""Every error alphacut raises on purpose.

The tree::

    AlphacutError                       exit 1   HTTP 500
    ├── OptionsError                    exit 64  HTTP 422   a bad option value or combination
    ├── InputError                      exit 65  HTTP 400   the input cannot be used
    │   ├── InputNotFound               exit 66  HTTP 404   no such file, folder or object; a pattern that matches none
    │   ├── UnsupportedImage            exit 65  HTTP 415   empty, not an image, truncated, corrupt
    │   ├── ImageTooLarge               exit 65  HTTP 413   over the pixel limit (decompression bomb)
    │   ├── UploadStalled               exit 65  HTTP 408   an upload stopped arriving
    │   ├── UnsupportedVideo            exit 65  HTTP 415   not a video, no video stream, no frames, corrupt
    │   │   └── VideoTooLarge           exit 65  HTTP 413   over the frame-size, frame-count or duration limit
    │   ├── UnknownSource               exit 65  HTTP 404   a refine names an upload the server no longer has
    │   ├── JobNotFound                 exit 65  HTTP 404   no such video job (or it expired)
    │   └── JobNotReady                 exit 65  HTTP 409   the job's result is asked for before it is done
    ├── ModelError                      exit 69  HTTP 503   a model cannot be made ready
    │   ├── ModelNotFound               exit 69  HTTP 404   unknown name, or missing file and no source
    │   ├── InvalidModel                exit 69  HTTP 422   a file that is not a usable ONNX model
    │   ├── ChecksumMismatch            exit 69  HTTP 502   the bytes are not the registered file
    │   ├── DownloadFailed              exit 69  HTTP 503   network or index failure while fetching
    │   ├── ProviderUnavailable         exit 69  HTTP 503   an explicitly requested provider did not load
    │   └── LicenseNotAccepted          exit 69  HTTP 403   a restrictive licence the user has not accepted
    ├── MissingDependency               exit 69  HTTP 501   an optional extra is not installed
    ├── OutputError                     exit 73  HTTP 409   the output cannot be written where it was asked for
    │   ├── OutputExists                exit 73  HTTP 409   a single named output is there and --overwrite was not given
    │   └── OutputIsInput               exit 73  HTTP 409   the output would replace (or mix with) an input
    ├── StorageError                    exit 74  HTTP 502   reading or writing a file or object failed
    ├── CannotListen                    exit 71  HTTP 500   the server cannot bind its address (in use, not allowed)
    ├── ClusterUnavailable              exit 69  HTTP 503   the Ray cluster cannot be joined
    ├── InferenceError                  exit 70  HTTP 500   ONNX Runtime failed while running
    ├── Overloaded                      exit 75  HTTP 503   no capacity left; try again later
    ├── InferenceTimeout                exit 75  HTTP 504   a request ran past its time limit
    ├── AuthenticationFailed            exit 77  HTTP 401   a missing or wrong API key
    │   └── OriginRefused               exit 77  HTTP 403   a cross-site request to a server without keys
    └── HostNotAllowed                  exit 64  HTTP 421   a Host header the server does not answer to

Each class carries the exit code the CLI uses and the HTTP status the server
answers with, so both edges map errors in one place.
"""

from __future__ import annotations

__all__ = [
    "AlphacutError",
    "AuthenticationFailed",
    "CannotListen",
    "ChecksumMismatch",
    "ClusterUnavailable",
    "DownloadFailed",
    "ImageTooLarge",
    "InferenceError",
    "InferenceTimeout",
    "InputError",
    "InputNotFound",
    "InvalidModel",
    "JobNotFound",
    "JobNotReady",
    "LicenseNotAccepted",
    "MissingDependency",
    "ModelError",
    "ModelNotFound",
    "OptionsError",
    "OutputError",
    "OutputExists",
    "OutputIsInput",
    "Overloaded",
    "ProviderUnavailable",
    "StorageError",
    "UnknownSource",
    "UnsupportedImage",
    "UnsupportedVideo",
    "VideoTooLarge",
]


class AlphacutError(Exception):
    """Base class: anything alphacut raises deliberately."""

    exit_code = 1
    http_status = 500

    @property
    def kind(self) -> str:
        """The class name, used as the error type in CLI lines and JSON bodies."""
        return type(self).__name__

    def _about(self, place: str | None, reason: str) -> None:
        """The message names `place` first, as a shell tool's errors do; `.reason` keeps the
        bare cause for lines and JSON bodies that name the place already."""
        self.reason = reason
        Exception.__init__(self, f"{place}: {reason}" if place else reason)


class OptionsError(AlphacutError, ValueError):
    exit_code = 64
    http_status = 422


class InputError(AlphacutError, ValueError):
    exit_code = 65
    http_status = 400

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        self._about(source, message)


class InputNotFound(InputError):
    exit_code = 66
    http_status = 404


class UnsupportedImage(InputError):
    http_status = 415


class ImageTooLarge(InputError):
    http_status = 413


class UploadStalled(InputError):
    http_status = 408


class UnsupportedVideo(InputError):
    http_status = 415


class VideoTooLarge(UnsupportedVideo):
    http_status = 413


class UnknownSource(InputError):
    http_status = 404


class JobNotFound(InputError):
    http_status = 404


class JobNotReady(InputError):
    http_status = 409


class ModelError(AlphacutError):
    exit_code = 69
    http_status = 503


class ModelNotFound(ModelError):
    http_status = 404


class InvalidModel(ModelError):
    http_status = 422


class ChecksumMismatch(ModelError):
    http_status = 502


class DownloadFailed(ModelError):
    http_status = 503


class ProviderUnavailable(ModelError):
    http_status = 503


class LicenseNotAccepted(ModelError):
    """A non-commercial or copyleft model was asked for without `--accept-license NAME`."""

    http_status = 403


class MissingDependency(AlphacutError, ImportError):
    exit_code = 69
    http_status = 501


class OutputError(AlphacutError):
    """Where the result was asked to go, it may not be written (see `alphacut.batch.outputs`)."""

    exit_code = 73
    http_status = 409

    def __init__(self, message: str, *, destination: str | None = None) -> None:
        self.destination = destination
        self._about(destination, message)


class OutputExists(OutputError):
    pass


class OutputIsInput(OutputError):
    pass


class StorageError(AlphacutError):
    """A file or object could not be read, listed or written (not the input's fault)."""

    exit_code = 74
    http_status = 502

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        self._about(source, message)


class CannotListen(AlphacutError):
    """`alphacut serve` cannot bind its host and port: in use, a port below 1024 without the
    right, or an address this machine does not have. The operating system refused a system
    call, hence sysexits' EX_OSERR (71), apart from 69's missing extras and models and 75's
    "try again later"."""

    exit_code = 71
    http_status = 500


class ClusterUnavailable(AlphacutError):
    """The Ray cluster could not be joined (unreachable, or its client server failed to start
    one for us even after retries): a service that is unavailable, EX_UNAVAILABLE (69)."""

    exit_code = 69
    http_status = 503


class InferenceError(AlphacutError):
    exit_code = 70
    http_status = 500


class Overloaded(AlphacutError):
    exit_code = 75
    http_status = 503


class InferenceTimeout(AlphacutError):
    exit_code = 75
    http_status = 504


class AuthenticationFailed(AlphacutError):
    exit_code = 77
    http_status = 401


class OriginRefused(AuthenticationFailed):
    http_status = 403


class HostNotAllowed(AlphacutError):
    exit_code = 64
    http_status = 421
