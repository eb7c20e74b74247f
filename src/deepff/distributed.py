"""Data-parallel training on MPI: K processes train one model as one process would.

Synchronous data parallelism, the way Horovod and PyTorch's DDP do it. Every
rank holds the same parameters theta (drawn from the same seed) and draws the
same permutation of the N rows each epoch. A global mini-batch of B rows is
split into K contiguous shares (sizes differ by at most one); rank r takes
share r, of m_r rows, and gathers only those rows. Per step::

    w_i' = w_i m_r / m                         rank r's rows count as 1/m each, not 1/m_r
    J_r = (1/m_r) sum_i w_i' l_i               = rank r's part of J = (1/m) sum_i w_i l_i
    grad_r = dJ_r/dtheta                       net.backward: rank r's part of the gradient
    [grad | J | hits | stop] summed over ranks  one in-place Allreduce of one flat buffer
    opt.step(theta, grad)                      the same numbers on every rank: theta stays equal

so the gradient is exactly the one of the whole global batch, whatever K is
(up to the order of the floating-point sums). Batch normalisation takes its
mean and variance over the whole global batch (two small Allreduces per layer
in the forward sweep, one in the backward sweep); dropout masks are a hash of
(seed, epoch, layer, global row, unit), so they do not depend on K; L-BFGS
(full batch) reduces its loss and gradient the same way at every evaluation.

Only rank 0 should write (the deepff command does so). A rank that fails on
its own (an exception the others cannot see) prints one line and ends the
whole job with ``MPI_Abort``, so that no rank waits forever in an Allreduce.

This module imports mpi4py only when a communicator is asked for
(:func:`launched_comm`) or given (``Network.fit(..., comm=...)``).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time

import numpy as np

from .errors import DeepffError, DivergenceError, InputError

#: seconds a failing rank waits after writing its one-line reason and before MPI_Abort (under load,
#: mpiexec could otherwise end the job before it has forwarded the line to the user)
ABORT_GRACE_S = 0.5

__all__ = ["DistributedError", "Reducer", "launched_comm", "run_ranks", "world_size_from_env", "shard_bounds",
           "keyed_uniform"]

#: environment variables through which launchers (MPICH/Hydra, Open MPI, PMIx, Slurm) give the world size
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


class DistributedError(InputError):
    """Ranks that disagree (data, settings, seed) or a batch too small for the ranks; raised on every rank."""

    collective = True


def world_size_from_env(environ=None):
    """The number of processes a launcher (mpiexec, srun) started, from its environment; 1 when none.

    Parameters
    ----------
    environ : mapping, optional
        Defaults to ``os.environ``.

    Returns
    -------
    int
    """
    environ = os.environ if environ is None else environ
    for name in _SIZE_VARS[:4]:
        value = environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    # srun sets SLURM_NTASKS for a whole allocation; only a task it started has SLURM_PROCID too
    if environ.get("SLURM_PROCID") is not None and environ.get("SLURM_NTASKS", "").strip().isdigit():
        return int(environ["SLURM_NTASKS"])
    return 1


def launched_comm():
    """``MPI.COMM_WORLD`` when this process is one of several started by mpiexec or srun, else None.

    Returns
    -------
    mpi4py.MPI.Comm or None

    Raises
    ------
    InputError
        When a launcher started several processes but mpi4py cannot be
        imported (the ``deepff[mpi]`` extra is not installed).
    """
    size = world_size_from_env()
    if size <= 1:
        return None
    mpi = _import_mpi(f"this process is one of {size} started by an MPI launcher")
    return mpi.COMM_WORLD


#: the communicator of ``mpiexec -n K deepff ...`` (set by :func:`run_ranks`), None otherwise
LAUNCHED = None
#: True while :func:`run_ranks` runs the command (the deepff command asks before calling it)
RUNNING = False
_state = {"met": False, "stderr": None}


def _rank_from_env():
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return 0


def run_ranks(main, argv):
    """Run the deepff command on each of the K processes a launcher started; rank 0 speaks and writes.

    ``deepff train`` trains one model on all ranks; other commands run on
    rank 0 only. Ranks other than 0 print nothing, unless they fail alone
    (then their one line says which rank). A rank that fails before the
    ranks meet (the start-up check of training) tells the others there, so
    that every rank stops with one message.

    Parameters
    ----------
    main : callable
        ``deepff.cli.main``, called as ``main(argv)``.
    argv : list of str
        The command line, without the program name.

    Returns
    -------
    int
        The exit status.
    """
    global LAUNCHED, RUNNING
    RUNNING = True
    first = next((a for a in argv if a != "--debug"), None)
    training = first is None or first == "train" or (first.startswith("-") and first not in ("-h", "--help",
                                                                                           "--version"))
    try:
        LAUNCHED = launched_comm()
    except InputError as exc:
        if _rank_from_env() == 0:
            sys.stderr.write(f"deepff: error: {exc}\n")
        return 2
    comm = LAUNCHED
    if comm is None or comm.Get_size() == 1:
        return main(argv)
    rank = comm.Get_rank()
    _state["stderr"] = sys.stderr
    if rank > 0:
        if not training:
            return 0                     # evaluate, predict, ...: rank 0 does it
        sys.stdout = open(os.devnull, "w")   # noqa: SIM115 - for the life of the process
        sys.stderr = io.StringIO()
    status = main(argv)
    if training and status not in (0, 130) and not _state["met"]:
        # failed before the start-up check: tell the ranks waiting there, with this rank's message
        said = sys.stderr.getvalue().strip().splitlines() if rank > 0 else ["(said above)"]
        comm.allgather({"failed": said[-1] if said else f"exit status {status}"})
    return status
def _import_mpi(why):
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise InputError(f"{why}, but mpi4py cannot be imported ({exc}); install the extra with "
                         "pip install 'deepff[mpi]' (or run a single process without mpiexec)") from None
    return MPI


def shard_bounds(m, size, rank):
    """Rows [lo, hi) of a global batch of ``m`` rows that rank ``rank`` of ``size`` takes.

    Contiguous shares whose sizes differ by at most one; when m < size some
    shares are empty (the short last batch of an epoch).

    Parameters
    ----------
    m, size, rank : int

    Returns
    -------
    (int, int)
    """
    return rank * m // size, (rank + 1) * m // size


# ----------------------------------------------------------------- dropout
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    """splitmix64's finaliser on a uint64 array, in place (a bijection with good avalanche)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def keyed_uniform(key, rows, units, dtype):
    """Uniform numbers in [0, 1) that depend only on (key, global row, unit).

    Parameters
    ----------
    key : int
        Mixes the seed, the epoch and the layer.
    rows : ndarray of shape (m,)
        Global indices of the rows.
    units : int
    dtype : numpy dtype
        float32 (24 random bits) or float64 (53 bits).

    Returns
    -------
    ndarray of shape (m, units)
    """
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64)[:, None] * np.uint64(units) + np.arange(units, dtype=np.uint64)[None, :]
        z += _mix(np.array([key], dtype=np.uint64))[0] * _GOLDEN
        _mix(z)
    bits = 24 if np.dtype(dtype) == np.float32 else 53
    return ((z >> np.uint64(64 - bits)).astype(dtype) * dtype.type(2.0 ** -bits)).astype(dtype, copy=False)


class _KeyedDropout:
    """Stands in for ``network.dropout_rng`` during distributed training.

    ``Dense.forward`` calls ``random(out=mask)`` once per dropout layer per
    pass; the numbers come from :func:`keyed_uniform` keyed by (seed, epoch,
    call number in the pass) at the global rows of this rank's share. The
    generator it replaces keeps its state (``bit_generator``), so checkpoints
    are written as usual.
    """

    def __init__(self, rng, seed):
        self.bit_generator = rng.bit_generator
        self.seed = int(seed)
        self.rows = np.empty(0, dtype=np.int64)
        self.epoch = 0
        self.calls = 0

    def begin(self, epoch, rows):
        self.epoch, self.rows, self.calls = int(epoch), rows, 0

    def random(self, out, dtype=None):
        self.calls += 1
        key = (self.seed * 1_000_003 + self.epoch) * 1_009 + self.calls
        out[...] = keyed_uniform(key & 0xFFFFFFFFFFFFFFFF, self.rows, out.shape[1], out.dtype)
        return out


# ------------------------------------------------------------- batch norm
class _BatchNormSync:
    """Global-batch statistics for batch-norm layers (set as ``layer._sync``)."""

    def __init__(self, comm, mpi):
        self.comm, self.mpi = comm, mpi
        self.rows = 0           # m, the rows of the whole global batch

    def _sum(self, local):
        buf = np.ascontiguousarray(local, dtype=np.float64).copy()
        self.comm.Allreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM)
        return buf

    def moments(self, z):
        """Mean and (biased) variance of z over the rows of the global batch, each of shape (1, units)."""
        mu = self._sum(z.sum(axis=0, dtype=np.float64, keepdims=True)) / self.rows
        d = z - mu.astype(z.dtype)
        var = self._sum(np.einsum("ij,ij->j", d, d, dtype=np.float64)[None, :]) / self.rows
        return mu.astype(z.dtype), var.astype(z.dtype)

    def sums(self, dbeta, dgamma):
        """sum(g) and sum(g o xhat) over the global batch (copies; the local sums stay for the gradient)."""
        both = self._sum(np.concatenate([dbeta, dgamma], axis=1)).astype(dbeta.dtype)
        k = dbeta.shape[1]
        return both[:, :k], both[:, k:]

    def idle(self, units):
        """Take part in one layer's collectives with an empty share (zero sums)."""
        self._sum(np.zeros((1, units)))
        self._sum(np.zeros((1, units)))

    def idle_forward(self, units):
        """Take part in one layer's forward collectives (mean, variance) with an empty share."""
        self._sum(np.zeros((1, units)))
        self._sum(np.zeros((1, units)))

    def idle_backward(self, units):
        """Take part in one layer's backward collective with an empty share."""
        self._sum(np.zeros((1, 2 * units)))


# ---------------------------------------------------------------- reducer
class Reducer:
    """What the :class:`~deepff.training.Trainer` asks of the K ranks; set as ``trainer.reducer``.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The ranks that train together (``MPI.COMM_WORLD`` under mpiexec).

    Attributes
    ----------
    rank, size : int
    """

    def __init__(self, comm):
        self.mpi = _import_mpi("Network.fit was given comm=")
        if not isinstance(comm, self.mpi.Comm):
            raise InputError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got {type(comm).__name__}")
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self._buf = None
        self._dropout = None
        self._bn = _BatchNormSync(comm, self.mpi)
        self._net = None

    # ---------------------------------------------------------- start / end
    def start(self, trainer, X, Y, w, full_batch):
        """Check that every rank holds the same run, then attach the dropout and batch-norm hooks.

        Parameters
        ----------
        trainer : Trainer
            The trainer about to run (its network, optimizer, batch size).
        X : ndarray of shape (n_samples, n_features)
            The whole training set (every rank passes the same; a memory map serves).
        Y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,) or None
        full_batch : bool
            Whether the optimizer trains on the whole set at once (L-BFGS).

        Raises
        ------
        DistributedError
            On every rank, when the ranks disagree or the batch has fewer
            rows than there are ranks.
        """
        net = trainer.network
        if net.seed is None:
            raise DistributedError("distributed training needs a seed, the same on every rank (the initial weights, "
                                   "the order of the rows and the dropout masks come from it): give seed=...")
        rows = X.shape[0] if full_batch else min(trainer.batch_size, X.shape[0])
        what = "the training set (L-BFGS uses it whole)" if full_batch else f"batch_size {trainer.batch_size}"
        if rows < self.size:
            raise DistributedError(f"{what} gives {rows} rows per step, fewer than the {self.size} ranks: every rank "
                                   f"needs at least one row; use at least {self.size} rows per step or fewer ranks")
        mine = _fingerprint(trainer, X, Y, w)
        everyone = self.comm.allgather(mine)
        _state["met"] = True
        failed = [(r, e["failed"]) for r, e in enumerate(everyone) if "failed" in e]
        if failed:
            r, said = failed[0]
            raise DistributedError(f"rank {r} of {self.size} failed before training: {said}")
        for r, theirs in enumerate(everyone):
            differ = [k for k in mine if theirs[k] != everyone[0][k]]
            if differ:
                raise DistributedError(f"rank {r} of {self.size} disagrees with rank 0 on {', '.join(differ)} "
                                       f"(rank 0: {', '.join(str(everyone[0][k]) for k in differ)}; rank {r}: "
                                       f"{', '.join(str(theirs[k]) for k in differ)}); every rank must load the "
                                       "same data with the same settings and seed")
        self._net = net
        self._dropout = _KeyedDropout(net.dropout_rng, net.seed)
        net.dropout_rng = self._dropout
        self._bn_layers = [layer for layer in net.layers if layer.batch_norm]
        for layer in self._bn_layers:
            layer._sync = self._bn
        self._buf = np.zeros(net.params.size + 3, dtype=np.float64 if net.dtype == np.float64 else net.dtype)

    def finish(self):
        """Detach the hooks (the network trains alone again)."""
        net = self._net
        if net is None:
            return
        if isinstance(net.dropout_rng, _KeyedDropout):
            net.dropout_rng = np.random.Generator(self._dropout.bit_generator)
        for layer in net.layers:
            layer._sync = None
        self._net = None

    def fail(self, exc):
        """A rank raised: end all ranks (MPI_Abort) unless every rank raised the same error together.

        Parameters
        ----------
        exc : BaseException
            What this rank raised; a :class:`DistributedError` (raised by
            every rank at once) returns and is re-raised by the caller.
        """
        if getattr(exc, "collective", False) or isinstance(exc, DivergenceError) or self.size == 1:
            return          # (every rank sees the same loss and weights, so every rank diverges together)
        what = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, KeyboardInterrupt):
            what = "interrupted"
        err = _state["stderr"] or sys.stderr
        err.write(f"deepff: rank {self.rank} of {self.size} failed: {what}; ending all {self.size} ranks\n")
        err.flush()
        time.sleep(ABORT_GRACE_S)   # let mpiexec forward the line before MPI_Abort kills the job's pipes
        self.comm.Abort(1 if not isinstance(exc, DeepffError) else 2)

    # -------------------------------------------------------------- a step
    def share(self, idx):
        """This rank's rows of a global batch.

        Parameters
        ----------
        idx : ndarray of shape (m,)
            Row indices of the global batch.

        Returns
        -------
        ndarray of shape (m_r,)
            A view: this rank's contiguous share (m_r is m / K rounded down or up).
        """
        lo, hi = shard_bounds(idx.shape[0], self.size, self.rank)
        return idx[lo:hi]

    def begin_batch(self, epoch, rows, m):
        """Tell the dropout and batch-norm hooks about the batch to come.

        Parameters
        ----------
        epoch : int
            0-based epoch (a key of the dropout masks).
        rows : ndarray of shape (m_r,)
            Global indices of this rank's rows.
        m : int
            Rows of the whole global batch.
        """
        self._dropout.begin(epoch, rows)
        self._bn.rows = m

    def weights(self, w_local, m_local, m, out):
        """Weights w_i m_r / m: rank r's loss and gradient become its part of the global batch's.

        Parameters
        ----------
        w_local : ndarray of shape (m_local,) or None
            The sample weights of this rank's rows (None: all 1).
        m_local : int
            Rows of this rank's share.
        m : int
            Rows of the global batch.
        out : ndarray of shape (n_rows,)
            Scratch of at least ``m_local`` entries.

        Returns
        -------
        ndarray of shape (m_local,)
        """
        scale = m_local / m
        if w_local is None:
            out[:m_local] = scale
        else:
            np.multiply(w_local, scale, out=out[:m_local])
        return out[:m_local]

    def idle_pass(self):
        """An empty share of the batch: take part in the batch-norm collectives of the forward and backward sweep."""
        if self._bn.rows > 1:          # a one-row batch uses the running statistics, without collectives
            for layer in self._bn_layers:
                self._bn.idle_forward(layer.units)
            for layer in reversed(self._bn_layers):
                self._bn.idle_backward(layer.units)

    def allreduce_step(self, grad, J, hits, stop):
        """Sum gradient, loss, hits and Ctrl-C requests over the ranks in one Allreduce.

        Parameters
        ----------
        grad : ndarray of shape (n_params,)
            This rank's part of the gradient; overwritten with the sum.
        J, hits : float
            This rank's part of the loss, and its correctly classified rows.
        stop : bool
            Whether this rank was asked to stop (Ctrl-C).

        Returns
        -------
        (float, float, bool)
            The global loss and hits, and whether any rank was asked to stop.
        """
        buf, p = self._buf, grad.shape[0]
        buf[:p] = grad
        buf[p:] = (J, hits, 1.0 if stop else 0.0)
        self.comm.Allreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM)
        grad[...] = buf[:p]
        return float(buf[p]), float(buf[p + 1]), bool(buf[p + 2] > 0)

    def evaluate(self, network, X, Y, w=None):
        """:func:`deepff.training.evaluate` over all ranks: each takes a contiguous block of the rows.

        Parameters
        ----------
        network : FeedForward
        X : ndarray of shape (n_samples, n_features)
            The whole evaluation set (the same on every rank).
        Y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,), optional

        Returns
        -------
        dict
            "loss" and, for classification, "accuracy", of all the rows.
        """
        from .metrics import evaluate

        lo, hi = shard_bounds(X.shape[0], self.size, self.rank)
        sums = np.zeros(3)
        if hi > lo:
            wl = None if w is None else w[lo:hi]
            part = evaluate(network, X[lo:hi], Y[lo:hi], wl)
            denom = (hi - lo) if wl is None else float(wl.sum(dtype=np.float64))
            sums[:] = part["loss"] * (hi - lo), part.get("accuracy", 0.0) * denom, denom
        self.comm.Allreduce(self.mpi.IN_PLACE, sums, op=self.mpi.SUM)
        out = {"loss": sums[0] / X.shape[0]}
        if network.task == "classification":
            out["accuracy"] = sums[1] / sums[2]
        return out

    def full_batch(self, X, Y, w):
        """This rank's block of the whole training set for L-BFGS, with weights scaled to its part.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        Y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,) or None

        Returns
        -------
        (ndarray, ndarray, ndarray)
            X, Y and the weights w_i n_r / n of this rank's n_r rows.
        """
        lo, hi = shard_bounds(X.shape[0], self.size, self.rank)
        n = X.shape[0]
        wl = np.full(hi - lo, (hi - lo) / n, dtype=X.dtype) if w is None else w[lo:hi] * X.dtype.type((hi - lo) / n)
        return np.ascontiguousarray(X[lo:hi]), np.ascontiguousarray(Y[lo:hi]), wl.astype(X.dtype, copy=False)


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.asarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a[:64]).tobytes())
    return h.hexdigest()[:16]


def _fingerprint(trainer, X, Y, w):
    """What must be equal on every rank, as short printable values."""
    net = trainer.network
    opt = trainer.optimizer
    return {
        "the data (shape and first rows)": f"{X.shape} {_digest(X, Y, w)}",
        "the dtype": str(net.dtype),
        "the seed": net.seed,
        "the network": f"{net.n_features}-" + "-".join(str(layer.units) for layer in net.layers),
        "the weights": _digest(net.params.theta[None, :]),
        "the optimizer": f"{getattr(opt, 'name', type(opt).__name__)} lr={getattr(opt, 'lr', None)}",
        "batch_size and epochs": f"{trainer.batch_size}, {trainer.epochs}",
        "the position in the run": f"epoch {trainer.epoch}, step {trainer.step}",
    }
