"""The tables of the project file (``topology.toml``, see :mod:`topology.project`) as pydantic
models: imported only when a project file is read, so that a command without one starts without
pydantic's cost before it reads its files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from topology.rules.versions import parse_given_version
from topology.variables import NAME_RE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TlsSettings(_Strict):
    """TLS for the management API and AMQP: verification is on unless turned off."""

    ca: str | None = Field(None, description="CA bundle (PEM) to verify the broker's certificate with (default: the system's).")
    cert: str | None = Field(None, description="Client certificate (PEM), for brokers that ask for one.")
    key: str | None = Field(None, description="The client certificate's private key (PEM).")
    verify: bool = Field(True, description="Verify the broker's certificate and host name. false prints a warning.")


class _Shared(_Strict):
    files: list[str] | None = Field(None, description="Topology files and directories.")
    values: list[str] | None = Field(None, description="Values files, in order (the later wins).")
    user: str | None = Field(None, description="Management user name.")
    user_env: str | None = Field(None, description="Environment variable holding the management user name.")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    timeout: float | None = Field(None, gt=0, le=3600, description="Seconds to wait for each request.")
    tls: TlsSettings | None = None
    broker_version: str | None = Field(
        None, description="The RabbitMQ version the target runs (4.0, 4.x, 3.13.7): what the offline commands "
                          "(validate, route, explain, lint, test) check against unless --broker-version is given.")

    @field_validator("broker_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None:
            parse_given_version(value)  # its ValueError names the accepted forms
        return value

    @field_validator("user_env", "password_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


class TargetSettings(_Shared):
    url: str = Field(description="Management API URL, without credentials.")
    amqp_url: str | None = Field(None, description="AMQP URL, without credentials (default: the management host, port 5672).")


class ProjectSettings(_Strict):
    secrets: list[str] = Field(default_factory=list, description="More secret variable names.")
    defaults: _Shared = Field(default_factory=_Shared)
    targets: dict[str, TargetSettings]
