"""Multi-process training on PyTorch's own engine: torchrun or ``--gpus N`` spawning,
DistributedDataParallel, NCCL on GPUs and gloo on CPU.

Each rank works on its slice of the global batch. The random draws that define a step
(data indices, latents, classes, cameras) are made at global size from a stream that is
identical on every rank and then sliced, so N ranks with global batch B follow the same
trajectory as one process with batch B (per-sample synthesis noise, stratified jitter and
density-regularization points are drawn per rank).
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

FAULT_ENV = "TRI3D_DEBUG_FAIL_RANK"  # fault injection for testing the launcher: that rank raises
EXPECTED_ERROR_STATUS = 2  # the exit status of a command that failed with a one-line error (bad input, files)


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: str) -> DistEnv:
    """Join the process group described by torchrun-style variables (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT); a single process when WORLD_SIZE is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    env = DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(env.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=env.rank, world_size=world)
    return env


def rank_device(env: DistEnv, device: str) -> torch.device:
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", env.local_rank) if env.enabled else torch.device("cuda" if device == "auto" else device)


def all_reduce_mean_(t: torch.Tensor) -> torch.Tensor:
    """In-place mean of ``t`` over all ranks (no-op without a process group)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
        t.div_(dist.get_world_size())
    return t


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads_per_rank(nprocs: int) -> int | None:
    """Intra-op threads for each of ``nprocs`` local ranks: the cores this process may run
    on, shared out (``nprocs`` ranks with the default thread count each would oversubscribe
    them); None when ``OMP_NUM_THREADS`` is set, which then decides as usual."""
    if "OMP_NUM_THREADS" in os.environ:
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // nprocs)


def _spawned(local_rank: int, world: int, port: int, threads: int | None, entry: Callable[[list[str]], int],
             argv: list[str]) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if threads is not None:
        torch.set_num_threads(threads)
    code = 1
    try:
        code = entry(argv)
    finally:
        if dist.is_initialized():
            if code == 0:  # both ranks finished: tear down together (a rank leaving early aborts the other's gloo threads)
                dist.barrier()
            dist.destroy_process_group()
    if code:
        raise SystemExit(code)
    # A clean finish leaves without the interpreter's finalization: a gloo work object still
    # referenced there frees its tensors after Python is torn down and aborts the process
    # (SIGABRT after a successful run, seen once in about forty runs of a two-rank test; the
    # failure described in pytorch/pytorch pull request 179291). Everything this rank wrote is
    # closed by now; only the standard streams are buffered.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(nprocs: int, entry: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run ``entry(argv)`` (a module-level function returning an exit status, e.g. the
    ``tri3d`` command's ``main``) in ``nprocs`` local processes (what ``--gpus N`` does),
    each with its share of the CPU cores (``threads_per_rank``), and return 0. A rank whose
    ``entry`` returns ``EXPECTED_ERROR_STATUS`` (it has printed its one-line error) stops
    the job and that status is returned; an exception in any rank stops the whole job and
    is re-raised here with its traceback."""
    try:
        torch.multiprocessing.spawn(_spawned, args=(nprocs, free_port(), threads_per_rank(nprocs), entry, argv),
                                    nprocs=nprocs, join=True)
    except torch.multiprocessing.ProcessExitedException as err:
        if err.exit_code == EXPECTED_ERROR_STATUS:
            return EXPECTED_ERROR_STATUS
        raise
    return 0


def check_fault_injection(env: DistEnv) -> None:
    if os.environ.get(FAULT_ENV) == str(env.rank) and env.enabled:
        raise RuntimeError(f"{FAULT_ENV}: rank {env.rank} fails on purpose")
