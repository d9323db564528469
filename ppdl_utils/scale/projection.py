"""How long the embarrassingly parallel crypto work takes on more cores: a small model fed with
what ``bench/bench_dask.py`` measures on this machine.

Model (one workload = `tasks` equal chunks, each `chunk_seconds` of compute on one core):

    waves      = ceil(tasks / cores) * (chunk_seconds + overhead_per_chunk)
    scheduler  = tasks * scheduler_seconds_per_task          (the Dask scheduler is one thread)
    transfer   = bytes_through_client / client_bandwidth      (the client process is the hub)
    projected  = max(waves, scheduler, transfer) + startup

Assumptions (stated because the numbers are only as good as they are):

1. Cores are like the measured one (same per-core rate; no turbo/hyper-threading differences)
   and the work per chunk is uniform (Paillier cost does not depend on pixel values).
2. ``overhead_per_chunk`` is the measured per-chunk loss (core-seconds per chunk not spent
   computing: serialization, scheduling round trips, the client writing the chunk) and does
   not grow with the cluster size.
3. The scheduler spends about 1 ms per task (Dask's documented order of magnitude, 200 us-1 ms),
   serially; it becomes the bound only for very short tasks.
4. Everything that leaves a cluster passes through the client process's network link
   (default 1 Gbit/s = 125 MB/s): the plain images in and the rendered images out for the dataset
   encryption; the feature ciphertexts twice (client cluster -> client -> server) for private
   inference.  Transfers overlap with compute (hence max, not sum).
5. Private inference is pipelined: the server starts on a chunk as soon as it is encrypted, so
   the two parties' stages overlap; each party has `cores` cores.  The client's decryption (one
   per image) is added after the last server chunk.
6. Cluster start-up, data staging and failures are excluded (``startup_seconds`` = 0 by default).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

FULL_DATASET_IMAGES = 21_165  # COVID-19 Radiography Database, the papers' full set
FULL_DATASET_SIDE = 299  # native resolution
INFERENCE_BATCH = 10_000
MOBILENET_FEATURES = 1280
SCHEDULER_SECONDS_PER_TASK = 1e-3
CLIENT_BANDWIDTH = 125e6  # bytes/s: 1 Gbit/s


@dataclass(frozen=True)
class Projection:
    """Projected wall time of one workload on `cores` cores and what bounds it."""

    workload: str
    cores: int
    tasks: int
    core_hours: float  # compute only
    waves_s: float
    scheduler_s: float
    transfer_s: float
    projected_s: float

    @property
    def bound(self) -> str:
        parts = {"compute": self.waves_s, "scheduler": self.scheduler_s, "network": self.transfer_s}
        return max(parts, key=parts.get)

    def row(self) -> dict:
        return asdict(self) | {"bound": self.bound, "projected_min": self.projected_s / 60}


def project(workload: str, core_seconds: float, tasks: int, cores: int, overhead_per_chunk: float,
            bytes_through_client: float = 0.0, bandwidth: float = CLIENT_BANDWIDTH,
            scheduler_seconds_per_task: float = SCHEDULER_SECONDS_PER_TASK,
            startup_seconds: float = 0.0) -> Projection:
    """The model above for one workload."""
    if cores < 1 or tasks < 1 or core_seconds < 0:
        raise ValueError(f"cores and tasks must be >= 1 and core_seconds >= 0, got {cores}, {tasks}, {core_seconds}")
    waves = math.ceil(tasks / cores) * (core_seconds / tasks + overhead_per_chunk)
    scheduler = tasks * scheduler_seconds_per_task
    transfer = bytes_through_client / bandwidth
    return Projection(workload, cores, tasks, core_seconds / 3600, waves, scheduler, transfer,
                      max(waves, scheduler, transfer) + startup_seconds)


def project_dataset_encryption(rate_per_core: float, overhead_per_chunk: float, cores: int,
                               images: int = FULL_DATASET_IMAGES, side: int = FULL_DATASET_SIDE,
                               chunk_pixels: int = 1 << 16, **kwargs) -> Projection:
    """Randomized encryption + rendering of `images` side x side images at `rate_per_core`
    encryptions per second per core, in chunks of about `chunk_pixels` pixels (at least one image:
    one 299-px image per task by default)."""
    pixels = side * side
    per_chunk = max(1, chunk_pixels // pixels)
    tasks = math.ceil(images / per_chunk)
    moved = 2 * images * pixels  # plain uint8 images in, rendered uint8 images out
    return project(f"encrypt {images:,} images at {side} px", images * pixels / rate_per_core, tasks, cores,
                   overhead_per_chunk, bytes_through_client=moved, **kwargs)


def project_private_inference(encrypt_s: float, server_s: float, decrypt_s: float, overhead_per_chunk: float,
                              cores: int, images: int = INFERENCE_BATCH, rows_per_chunk: int = 16,
                              features: int = MOBILENET_FEATURES, ciphertext_bytes: int = 512,
                              **kwargs) -> Projection:
    """A batch of `images` through the three stages, from measured per-image core-seconds of each
    (client encryption, server evaluation, client decryption); see assumption 5."""
    tasks = math.ceil(images / rows_per_chunk)
    moved = 2 * images * features * ciphertext_bytes  # client cluster -> client -> server
    kw = {k: v for k, v in kwargs.items() if k != "startup_seconds"}
    stages = [project("stage", images * s, tasks, cores, overhead_per_chunk, **kw) for s in (encrypt_s, server_s)]
    decrypt = project("decrypt", images * decrypt_s, tasks, cores, overhead_per_chunk, **kw).waves_s
    transfer = moved / kwargs.get("bandwidth", CLIENT_BANDWIDTH)
    waves = max(stage.waves_s for stage in stages) + decrypt
    scheduler = 3 * tasks * kwargs.get("scheduler_seconds_per_task", SCHEDULER_SECONDS_PER_TASK)
    total = max(waves, scheduler, transfer) + kwargs.get("startup_seconds", 0.0)
    return Projection(f"private inference, {images:,} images", cores, 3 * tasks,
                      images * (encrypt_s + server_s + decrypt_s) / 3600, waves, scheduler, transfer, total)


def projection_table(rate_per_core: float, overhead_per_chunk: float, inference_per_image: dict[str, float],
                     inference_overhead_per_chunk: float, cores: tuple[int, ...] = (64, 512),
                     **kwargs) -> list[Projection]:
    """The README's table: both workloads at each core count."""
    rows = []
    for c in cores:
        rows.append(project_dataset_encryption(rate_per_core, overhead_per_chunk, c, **kwargs))
        rows.append(project_private_inference(inference_per_image["encrypt"], inference_per_image["server"],
                                              inference_per_image["decrypt"], inference_overhead_per_chunk, c,
                                              **kwargs))
    return rows
