"""``docker``: the worker in a container: no network, read-only root, memory and task limits.

Each worker is a fresh container, removed after the evaluation: ``--network none``, a read-only
root file system, an empty tmpfs on ``/tmp``, the work dir as the only writable bind (its
``inputs/`` read-only), every capability dropped, ``no-new-privileges``, a memory cgroup limit
without swap (the RSS watchdog cannot see into a container; the daemon's cgroup does the job), a
pids limit (the fork-bomb cap, which also binds root), and GPUs through a device request (the
NVIDIA Container Toolkit) when the evaluation needs one. Home directories, the project checkout,
earlier runs and the rest of the host are not in the container at all (threat row 28).

Two images (``KERNELLOOP_DOCKER_IMAGE``, ``settings.docker_image``):

- ``host`` (default): a minimal image made locally from an in-memory tarball (no registry, no
  pull) that holds only mount points; what ``host_view.worker_view`` lists (the host's ``/usr``,
  Python installation, virtual environment and the code folders of the kernelloop packages the
  worker imports) is bind-mounted read-only, so the worker runs exactly the host's environment.
  This is what CI uses.
- any other name: an image that has Python and kernelloop installed (``docker/Dockerfile``). It
  must exist locally; the sandbox never pulls implicitly (build or pull it yourself).

Why the SDK creates the container and the ``docker`` client attaches to it: the Docker SDK gives
typed container settings (mounts, device requests, limits) and reliable inspection and removal
(was it OOM-killed? remove it whatever happened), while ``sandbox/spawn.py`` needs a local child
process with stdout/stderr pipes for its timeout and bounded log capture. ``docker start
--attach`` is that child: it relays the worker's output and exit status, and killing it never
stops the container, which is why ``finish`` kills and removes the container through the SDK.
The verdict channel is a FIFO in the work dir (a container cannot inherit our pipe).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import sys
import tarfile
import threading
from pathlib import Path

from ... import settings as settings_mod
from . import host_view
from .base import Ended, Launched, Wrapped

NAME = "docker"
WORKDIR = "/work"  # where the work dir appears inside the container
HOST_IMAGE = "host"
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # symlinks into /usr, or dirs
_CLI_ENV = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH")
_SHM_BYTES = 1 << 30
_ready: dict[str, str] = {}  # image setting -> image id, once checked (never cache a failure)
_lock = threading.Lock()


def _client():
    import docker

    return docker.from_env(timeout=60)


def _host_layout() -> list[tuple[str, str | None]]:
    """The host's top-level library and binary folders: (name, symlink target or None)."""
    layout = []
    for name in _TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            layout.append((name, os.readlink(path)))
        elif path.is_dir():
            layout.append((name, None))
    return layout


def _host_image_tar(layout: list[tuple[str, str | None]]) -> bytes:
    """A root file system of empty mount points and the host's /lib-style symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = ["usr", "etc", "tmp", "work", "proc", "dev", "sys", "run"]
        dirs += [name for name, target in layout if target is None]
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, target in layout:
            if target is not None:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
    return buf.getvalue()


def _ensure_image(client, setting: str) -> str:
    """The image id for ``setting``; the host image is created locally when missing."""
    import docker

    if setting != HOST_IMAGE:
        try:
            return client.images.get(setting).id
        except docker.errors.ImageNotFound:
            raise RuntimeError(
                f"image {setting!r} is not on this Docker host and the sandbox never pulls: "
                f"docker build -f docker/Dockerfile -t {setting} . (or docker pull it)"
            ) from None
    layout = _host_layout()
    tag = hashlib.sha256(repr(layout).encode()).hexdigest()[:12]
    name = f"kernelloop-host-root:{tag}"
    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        client.api.import_image_from_data(
            _host_image_tar(layout), repository="kernelloop-host-root", tag=tag
        )
        return client.images.get(name).id


def available() -> str | None:
    setting = settings_mod.get().docker_image
    if setting in _ready:
        return None
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the Docker SDK is not installed: pip install 'kernelloop[cluster]'"
    if shutil.which("docker") is None:
        return "the docker client is not installed (Debian/Ubuntu: apt-get install docker.io)"
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = _client()
        client.ping()
    except Exception as exc:
        return f"no Docker daemon answers at {where} ({type(exc).__name__}); start dockerd"
    try:
        with _lock:
            _ready[setting] = _ensure_image(client, setting)
    except Exception as exc:
        return str(exc)[:300]
    return None


def _host_mounts(argv: list[str]) -> list[tuple[str, str]]:
    """(path, mode) binds that make the host's Python environment run inside the container:
    ``host_view``'s list, the same as bwrap's (threat row 28: not the project checkout, not
    earlier runs). Its top-level symlinks are in the image already and GPUs come through the
    device request, so only its folders and files are bound here."""
    view = host_view.worker_view(argv, gpu=False)
    return [(e.path, "ro") for e in view if e.link is None and not e.device]


def wrap(argv: list[str], workdir: str, gpu: bool, writable: tuple[str, ...] = ()) -> Wrapped:
    import docker

    setting = settings_mod.get().docker_image
    host = setting == HOST_IMAGE
    binds = _host_mounts(argv) if host else []
    binds += [(workdir, "rw")]
    binds += [(path, "rw") for path in writable]  # e.g. this source's own load_inline cache
    mounts = [
        docker.types.Mount(
            WORKDIR if src == workdir else src, src, type="bind", read_only=mode == "ro"
        )
        for src, mode in binds
    ]
    inputs = os.path.join(workdir, "inputs")
    if os.path.isdir(inputs):
        mounts.append(docker.types.Mount(f"{WORKDIR}/inputs", inputs, type="bind", read_only=True))
    if not host and argv[0] == sys.executable:
        argv = ["python3", *argv[1:]]  # the image's own Python
    state: dict[str, object] = {}

    def launch(env: dict[str, str], memory_cap: int, max_tasks: int | None) -> Launched:
        client = _client()
        if not host:  # the image has its own PATH and libraries
            env = {k: v for k, v in env.items() if k not in ("PATH", "LD_LIBRARY_PATH")}
        requests = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpu else []
        container = client.containers.create(
            _ready.get(setting) or setting,
            command=argv,
            user=f"{os.getuid()}:{os.getgid()}",
            working_dir=WORKDIR,
            environment=env,
            network_mode="none",
            read_only=True,
            mounts=mounts,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=1g", "/dev/shm": f"rw,nosuid,size={_SHM_BYTES}"},
            mem_limit=memory_cap,
            memswap_limit=memory_cap,  # no swap: the cap is the cap
            pids_limit=max_tasks or -1,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            device_requests=requests,
            # No docker-init: the daemon mounts it at /sbin, a symlink into the read-only /usr
            # here. The worker is PID 1, so when it ends the kernel kills all it left behind.
            hostname="sandbox",
            labels={"kernelloop": "worker"},
        )
        state["container"] = container
        cli_env = {k: os.environ[k] for k in _CLI_ENV if k in os.environ}
        return Launched(argv=["docker", "start", "--attach", container.id], env=cli_env)

    def finish() -> Ended:
        container = state.pop("container", None)
        if container is None:
            return Ended()
        ended = Ended()
        with contextlib.suppress(docker.errors.NotFound):
            container.reload()
            if container.status == "running":
                with contextlib.suppress(docker.errors.APIError):
                    ended.killed = len(container.top().get("Processes") or [])
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
                container.reload()
            st = container.attrs.get("State", {})
            ended.oom_killed = bool(st.get("OOMKilled"))
            code = st.get("ExitCode") or 0
            if code > 128 and code - 128 in signal.Signals._value2member_map_:
                ended.signal = signal.Signals(code - 128).name
            container.remove(force=True)
        return ended

    isolation = ["docker", "ro-root", "tmpfs", "netns(none)", "pidns", "no-caps", "rlimits"]
    isolation += ["memory-cgroup", "image:" + ("host-bind" if host else setting)]
    return Wrapped(argv=argv, isolation=isolation, workdir=WORKDIR, launch=launch, finish=finish)
