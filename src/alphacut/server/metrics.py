"""Prometheus metrics, one registry per app so that several apps can live in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "alphacut_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "alphacut_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "alphacut_queue_depth", "Requests waiting for a worker", registry=r
        )
        self.in_flight = Gauge("alphacut_in_flight", "Inferences running now", registry=r)
        self.cache_hits = Counter(
            "alphacut_cache_hits", "Results served from the cache", registry=r
        )
        self.cache_misses = Counter("alphacut_cache_misses", "Results computed", registry=r)
        self.cache_bytes = Gauge(
            "alphacut_cache_bytes", "Bytes held by the result cache", registry=r
        )
        self.model_load_seconds = Gauge(
            "alphacut_model_load_seconds", "Time to load each model", ["model"], registry=r
        )
        self.errors = Counter("alphacut_errors", "Error responses by type", ["type"], registry=r)
        self.batch_size = Histogram(
            "alphacut_batch_size",
            "Images per model run (micro-batching)",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.inference_seconds = Histogram(
            "alphacut_inference_seconds",
            "Time in the worker per image (decode to encode)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.video_jobs = Counter(
            "alphacut_video_jobs", "Video jobs finished, by outcome", ["state"], registry=r
        )
        self.video_frames = Counter("alphacut_video_frames", "Video frames written", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
