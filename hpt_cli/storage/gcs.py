"""Google Cloud Storage: locations, the client, and errors a user can act on.

The client uses Application Default Credentials and honours STORAGE_EMULATOR_HOST. Every call
hpt makes passes `retry=None` and a timeout: retries are hpt's own (hpt_cli.storage.mirror), so
that an append is never repeated blindly and an unreachable service is noticed in bounded time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from hpt_cli.errors import ExitCode, HptError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
CALL_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for one request
START_TIMEOUT = (5.0, 10.0)  # the same for the probes before a run starts (bucket, lock): a hanging
# service sends the run to its spool after seconds, not minutes, and a Ctrl-C then is heard soon


class StorageError(HptError):
    """Storage could not be reached after retries; results are safe in the spool (exit 4)."""

    exit_code = ExitCode.STORAGE
    status = "storage_error"  # summary.json's status for a run that ends with this error


class UploadPending(StorageError):
    """The run ended but the bucket lacks some of it: it is all in the local spool (exit 4), and
    `hpt sync SPOOL` uploads the rest."""

    status = "upload_pending"


class Diverged(Exception):
    """The bucket's results.csv is not a prefix of the spool's: someone else wrote it."""


@dataclass(frozen=True)
class GcsLocation:
    bucket: str
    prefix: str = ""  # object name prefix, without leading or trailing "/"

    @classmethod
    def parse(cls, uri: str) -> GcsLocation:
        if not uri.startswith("gs://"):
            raise HptError(f"{uri}: expected a gs://bucket/prefix location")
        bucket, _, prefix = uri[len("gs://"):].partition("/")
        if not _BUCKET.match(bucket):
            raise HptError(f"{uri}: {bucket!r} is not a valid bucket name (3-222 characters: a-z, 0-9, "
                           "'.', '-', '_')")
        return cls(bucket, prefix.strip("/"))

    def child(self, *names: str) -> GcsLocation:
        return GcsLocation(self.bucket, "/".join(p for p in (self.prefix, *names) if p))

    def key(self, name: str) -> str:
        """The object name of `name` (a path relative to this location)."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}" if self.prefix else f"gs://{self.bucket}"


def is_gcs(uri: str) -> bool:
    """Whether `uri` names a bucket location. Every location a user gives passes here, so a
    mistyped scheme (`gs:/bucket`, `gs:bucket`, `GS://bucket`) is an error here, rather than a
    local folder named `gs:` that looks like a bucket in every line hpt prints."""
    if uri.startswith("gs://"):
        return True
    if uri[:3].lower() == "gs:":
        rest = uri[3:].lstrip("/")
        raise HptError(f"{uri}: not a gs:// location (did you mean gs://{rest}?); a local folder must not "
                       "start with 'gs:'")
    return False


def make_client():
    """A storage client (ADC, or the emulator named by STORAGE_EMULATOR_HOST)."""
    try:
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
    except ImportError:  # pragma: no cover - a dependency of hpt-cli
        raise HptError("gs:// needs google-cloud-storage: pip install google-cloud-storage") from None
    # the library's own switch: no background bucket-metadata requests for its tracing
    os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT") or "hpt"
    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=project, credentials=AnonymousCredentials())
        return storage.Client(project=project)
    except DefaultCredentialsError as exc:
        given = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if given:
            raise HptError(f"GOOGLE_APPLICATION_CREDENTIALS={given} cannot be used ({describe(exc)}): point it "
                           "at a service account key file (JSON), or unset it and run `gcloud auth "
                           "application-default login`") from None
        raise HptError("no Google credentials found: run `gcloud auth application-default login` or set "
                       "GOOGLE_APPLICATION_CREDENTIALS") from None


def transient(exc: BaseException) -> bool:
    """Worth retrying: 408, 429 and 5xx answers, and network failures (requests' exceptions are
    OSErrors; google-auth's TransportError wraps them; the library's own retries give up with a
    RetryError where a call was not given `retry=None`)."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import TransportError

    if isinstance(exc, GoogleAPICallError):
        code = exc.code or 0
        return code in (408, 429) or code >= 500
    return isinstance(exc, (OSError, TransportError, RetryError))


def describe(exc: BaseException) -> str:
    """One line for a storage failure."""
    request = getattr(exc, "request", None)
    if isinstance(exc, OSError) and getattr(request, "url", None):  # requests: name the host only
        from urllib.parse import urlsplit

        return f"{type(exc).__name__}: no answer from {urlsplit(request.url).netloc}"
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


def user_error(exc: BaseException, location: GcsLocation) -> HptError | None:
    """The error a user can fix (missing bucket, permission, credentials), or None if transient."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.NotFound):
        return HptError(f"gs://{location.bucket}: the bucket does not exist; create it (gcloud storage "
                        f"buckets create gs://{location.bucket}) or fix the output location")
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        return HptError(f"{location}: permission denied ({describe(exc)}); the account needs "
                        "roles/storage.objectAdmin on the bucket (gcloud auth application-default login "
                        "to use your own)")
    try:
        from google.auth.exceptions import RefreshError
    except ImportError:  # pragma: no cover
        RefreshError = ()  # noqa: N806
    if RefreshError and isinstance(exc, RefreshError):
        return HptError(f"Google credentials were refused ({describe(exc)}): run `gcloud auth "
                        "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS")
    return None


def check_bucket(client, location: GcsLocation) -> str | None:
    """Raise the user's error now (missing bucket, no permission); return a warning if the
    service does not answer (the run goes on into the spool), else None."""
    try:
        client.bucket(location.bucket).reload(timeout=START_TIMEOUT, retry=None)
    except Exception as exc:  # noqa: BLE001 - classified: the user's error, or offline
        raise_unless_transient(exc, location)
        return offline_warning(location, describe(exc))
    return None


def offline_warning(location: GcsLocation, why: str) -> str:
    """The warning of a run that starts with its bucket not answering."""
    return f"{location} does not answer now ({why}); results go to the spool first"


def raise_unless_transient(exc: BaseException, location: GcsLocation) -> None:
    """Return when `exc` is transient (the caller goes on offline: the spool holds everything);
    raise the user's error when it is one (`user_error`), and `exc` itself otherwise."""
    error = user_error(exc, location)
    if error is not None:
        raise error from None
    if not transient(exc):
        raise exc
