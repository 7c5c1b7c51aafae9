"""Projections: read models kept current from the event log.

Define a :class:`Projection`, give it to a :class:`ProjectionEngine` with a strategy, and
put :class:`~cqrs_kit.middleware.projection.ProjectionMiddleware` on the mediator.
"""

from cqrs_kit.projections.checkpoints import Checkpoint, projection_metadata
from cqrs_kit.projections.engine import ProjectionEngine
from cqrs_kit.projections.projection import (
    BatchContext,
    BatchHandler,
    FailurePolicy,
    Handler,
    Projection,
    ProjectionContext,
    Strategy,
)
from cqrs_kit.projections.status import ProjectionStatus
from cqrs_kit.projections.worker import AsyncProjectionWorker, ProjectionWorker

__all__ = [
    "AsyncProjectionWorker",
    "BatchContext",
    "BatchHandler",
    "Checkpoint",
    "FailurePolicy",
    "Handler",
    "Projection",
    "ProjectionContext",
    "ProjectionEngine",
    "ProjectionStatus",
    "ProjectionWorker",
    "Strategy",
    "projection_metadata",
]
