"""Where Delta tables live: a root (a local folder or an object-store URI) and the storage options to reach it.

One value type threads through every store of results (:mod:`resources.results_store`,
:mod:`resources.profile_results`, :mod:`resources.prediction_cache`, the code-execution cache), so nothing
assumes a local ``Path``. Schemes are the ones ``deltalake`` writes: ``s3://`` (``s3a://``), ``gs://``,
``az://`` / ``abfs://`` / ``abfss://``, and local paths (``file://`` or plain).

Concurrent writers on S3: Delta commits are safe only where the store refuses to create a commit file that
exists. S3 (since 2024) and S3-compatible stores (MinIO, R2) do so with ``If-None-Match``, which ``deltalake``
uses with ``conditional_put = "etag"``; that option is set for every ``s3://`` location unless the caller sets
``conditional_put`` (or a DynamoDB ``AWS_S3_LOCKING_PROVIDER``) itself. ``AWS_S3_ALLOW_UNSAFE_RENAME`` (which
lets two writers commit the same version, one silently lost) is refused.

Secrets never sit in the options as literal values: credential keys are refused there and come from the
environment (``deltalake`` and ``polars`` read ``AWS_*``, ``GOOGLE_*``, ``AZURE_*`` themselves) or from
``secret_env`` (option name → environment variable, resolved when a table is opened). The repr hides every
option value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deltalake import DeltaTable

#: URI schemes of object stores ``deltalake`` writes to.
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure", "adl"})
S3_SCHEMES = frozenset({"s3", "s3a"})
#: Option keys (case-insensitive, ``aws_``/``azure_``/``google_`` prefixes included) that carry credentials.
SECRET_KEYS = frozenset(
    {
        "aws_secret_access_key", "secret_access_key", "aws_session_token", "session_token", "token",
        "azure_storage_account_key", "account_key", "azure_storage_sas_key", "sas_key", "azure_storage_token",
        "azure_client_secret", "client_secret", "google_service_account_key", "service_account_key",
        "bearer_token", "password",
    }
)  # fmt: skip
UNSAFE_KEYS = frozenset({"aws_s3_allow_unsafe_rename", "allow_unsafe_rename"})
#: Options that only ``deltalake`` understands (``polars`` refuses them when reading plain parquet files).
DELTA_ONLY_KEYS = frozenset({"conditional_put", "aws_conditional_put", "aws_s3_locking_provider"})


class TableLocationError(ValueError):
    """A results location or its options cannot be used; the message says which setting and what to do."""


def _is_remote(root: str) -> bool:
    return urlparse(root).scheme.lower() in OBJECT_STORE_SCHEMES


@dataclass(frozen=True)
class TableLocation:
    """A folder of Delta tables (or one table): ``root`` and the storage options that reach it."""

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)
    #: option name → environment variable holding its value (secrets), read when a table is opened
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        root = str(self.root).strip()
        if not root:
            raise TableLocationError(
                "the results location is empty: give a folder or an s3://, gs://, az:// URI"
            )
        scheme = urlparse(root).scheme.lower()
        if scheme == "file":
            root = urlparse(root).path
        elif scheme and len(scheme) > 1 and scheme not in OBJECT_STORE_SCHEMES:
            raise TableLocationError(
                f"results location {root!r}: scheme {scheme}:// is not an object store deltalake writes to; use "
                f"one of {', '.join(sorted(OBJECT_STORE_SCHEMES))}:// or a local folder"
            )
        if not _is_remote(root):
            root = str(Path(root).expanduser().resolve())
        object.__setattr__(self, "root", root.rstrip("/") if _is_remote(root) else root)
        for key in self.storage_options:
            lowered = key.lower()
            if lowered in SECRET_KEYS or lowered.removeprefix("aws_").removeprefix("azure_") in SECRET_KEYS:
                raise TableLocationError(
                    f"results storage option {key!r} is a credential: never put it in the configuration; set it "
                    "in the environment (e.g. AWS_SECRET_ACCESS_KEY) or name the variable that holds it in "
                    "results_storage_secrets"
                )
            if lowered in UNSAFE_KEYS and str(self.storage_options[key]).strip().lower() in {
                "1",
                "true",
                "yes",
            }:
                raise TableLocationError(
                    f"results storage option {key}=true lets two writers commit the same table version (one is "
                    "silently lost); remove it: s3:// locations use conditional puts (conditional_put=etag)"
                )

    # -- what it is ------------------------------------------------------------------------------------------
    @classmethod
    def of(cls, value: TableLocation | str | os.PathLike[str]) -> TableLocation:
        """A location from a location, a URI or a local path."""
        return value if isinstance(value, TableLocation) else cls(os.fspath(value))

    @property
    def scheme(self) -> str:
        return urlparse(self.root).scheme.lower() if self.is_remote else "file"

    @property
    def is_remote(self) -> bool:
        return _is_remote(self.root)

    @property
    def uri(self) -> str:
        return self.root

    @property
    def local_path(self) -> Path:
        """The local folder; raises for an object-store location."""
        if self.is_remote:
            raise TableLocationError(f"{self.root} is on object storage, not a local folder")
        return Path(self.root)

    def __str__(self) -> str:
        return self.root

    def __truediv__(self, name: str) -> TableLocation:
        return self.child(name)

    def child(self, name: str) -> TableLocation:
        """The location of ``name`` under this one, with the same options."""
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise TableLocationError(f"table name {name!r} must be a relative name under {self.root}")
        return TableLocation(f"{self.root}/{name}", self.storage_options, self.secret_env)

    @property
    def name(self) -> str:
        return self.root.rstrip("/").rsplit("/", 1)[-1]

    # -- options ---------------------------------------------------------------------------------------------
    def delta_options(self) -> dict[str, str] | None:
        """Storage options for ``deltalake`` (``None`` for a local folder with none): the configured ones, the
        secrets read from their environment variables, and conditional puts on S3 unless configured."""
        options = {str(k): str(v) for k, v in self.storage_options.items()}
        for key, variable in self.secret_env.items():
            value = os.environ.get(variable)
            if value is None:
                raise TableLocationError(
                    f"results storage option {key} is to come from ${variable}, which is not set in this process"
                )
            options[key] = value
        if self.scheme in S3_SCHEMES:
            lowered = {k.lower() for k in options}
            if not lowered & DELTA_ONLY_KEYS:
                options["conditional_put"] = "etag"
        return options or None

    def read_options(self) -> dict[str, Any] | None:
        """Storage options for ``polars`` readers of plain parquet files (delta-only keys left out)."""
        options = self.delta_options()
        if options is None:
            return None
        kept = {k: v for k, v in options.items() if k.lower() not in DELTA_ONLY_KEYS}
        return kept or None

    # -- tables ----------------------------------------------------------------------------------------------
    def ensure_parent(self) -> None:
        """Create the local parent folder (object stores need none)."""
        if not self.is_remote:
            Path(self.root).parent.mkdir(parents=True, exist_ok=True)

    def is_table(self) -> bool:
        return bool(DeltaTable.is_deltatable(self.uri, storage_options=self.delta_options()))

    def table(self) -> DeltaTable:
        return DeltaTable(self.uri, storage_options=self.delta_options())
