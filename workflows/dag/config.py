"""The pipeline's configuration (limits, retries, as-of leads, Argo settings), validated."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from steps.runtime.errors import PipelineError
from steps.runtime.partition import describe_validation_error


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AsOfConfig(_Model):
    pretip_lead_minutes: int = Field(30, ge=0, le=24 * 60)
    lock_lead_minutes: int = Field(0, ge=0, le=24 * 60)


class Defaults(_Model):
    worlds: int = Field(1000, gt=0, le=1_000_000)
    profile: str = "base"


class Retries(_Model):
    limit: int = Field(2, ge=0, le=10)
    backoff_seconds: float = Field(2, ge=0)
    factor: float = Field(2, ge=1)
    max_backoff_seconds: float = Field(60, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` (2, 3, ...)."""
        return float(min(self.backoff_seconds * self.factor ** max(attempt - 2, 0), self.max_backoff_seconds))


class RunnerConfig(_Model):
    max_parallel: int = Field(2, gt=0, le=64)
    retries: Retries = Retries()


class ArgoConfig(_Model):
    namespace: str = "projections"
    image: str = "projections-step:latest"
    image_pull_policy: str = "IfNotPresent"
    service_account: str = "projections-workflow"  # the pods' identity
    operator_service_account: str = "projections-operator"  # who submits, applies, reads logs
    store_url: str = "s3://projections"
    s3_endpoint: str = "http://minio.projections.svc:9000"
    s3_secret: str = "projections-minio"
    artifact_bucket: str = "argo-artifacts"  # Argo's artifact repository (archived logs)
    parallelism: int = Field(4, gt=0)
    chunk_size: int = Field(31, gt=0, le=200)
    # Ranges of at least this many partitions run packed (a pod per slate and per draft group,
    # a container per step); `pipeline submit --pack/--no-pack` decides for one range.
    pack_from_partitions: int = Field(8, gt=0)
    # What a pack's pod requests in all, split evenly over its step containers (each keeps its
    # own limits): a pod asks for the sum of its containers' requests, and a pack's steps
    # mostly run one after another. The default is the largest single step's request.
    pack_cpu: str = Field("1", pattern=r"^\d+(\.\d+)?m?$")
    pack_memory: str = Field("1Gi", pattern=r"^\d+(Ki|Mi|Gi)$")
    schedule: str = "0 17 * * *"
    starting_deadline_seconds: int = Field(3600, ge=0)
    history_success: int = Field(7, ge=0)
    history_failed: int = Field(14, ge=0)
    webhook_url: str = ""


class PipelineConfig(_Model):
    timezone: str = "America/New_York"
    as_of: AsOfConfig = AsOfConfig()
    defaults: Defaults = Defaults()
    catch_up_days: int = Field(3, ge=0, le=60)
    runner: RunnerConfig = RunnerConfig()
    limits: dict[str, int] = Field(default_factory=dict)
    argo: ArgoConfig = ArgoConfig()

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        for name, permits in value.items():
            if permits < 1:
                raise ValueError(f"limit {name!r} must allow at least 1, got {permits}")
            if not name.replace(".", "").replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"limit name {name!r} must be a valid ConfigMap key")
        return value


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """The given file, or the packaged defaults."""
    try:
        if path is None:
            text = resources.files("workflows").joinpath("defaults/pipeline.yaml").read_text()
            where = "packaged defaults"
        else:
            text = Path(path).read_text()
            where = str(path)
        raw = yaml.safe_load(text) or {}
        return PipelineConfig.model_validate(raw)
    except FileNotFoundError:
        raise PipelineError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"config {where} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise PipelineError(f"config {where} is invalid: {describe_validation_error(exc)}") from None
