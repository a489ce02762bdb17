"""BG/NBD and Gamma-Gamma models as pure functions on numpy arrays.

No Polars, no I/O: every function takes per-customer arrays

- ``x``   frequency, the number of repeat purchase periods,
- ``t_x`` recency, the time from first to last purchase,
- ``T``   the time from first purchase to the end of the observation period,
- ``m``   the mean value of the repeat purchases,

and the model parameters. Fitting is maximum likelihood with
``scipy.optimize.minimize`` (L-BFGS-B) on the logarithms of the parameters, with
analytic gradients, so a fit over a million customers takes seconds. Optional
``weights`` let callers collapse identical customers into one row with a count.

References
----------
- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2). BG/NBD
  likelihood (eq. 6), E[X(t)] (eq. 9), E[Y(t) | x, t_x, T] (eq. 10), P(alive).
- Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", JMR 42(4); Fader & Hardie (2013), "The Gamma-Gamma Model of
  Monetary Value". Gamma-Gamma likelihood and E(M | p, q, gamma, m, x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from crmkit.errors import EXIT_DATA, CrmkitError

#: fewest customers with a repeat purchase we are willing to fit either model on
MIN_REPEAT_BUYERS = 10
# log-parameter bounds: exp(-15) .. exp(15) covers every sensible scale
_LOG_BOUNDS = (-15.0, 15.0)
# a fitted parameter within this much (in log) of a bound "ran to its bound": e^14 = 1.2e6
_NEAR_BOUND = 1.0
# what a parameter at its high/low bound says about the data, for the warning
_BOUND_MEANINGS = {
    ("r", "high"): "purchase rates barely differ between customers",
    ("alpha", "high"): "purchase rates barely differ between customers",
    ("a", "low"): "hardly anyone seems to drop out",
    ("b", "high"): "hardly anyone seems to drop out",
    ("a", "high"): "customers seem to drop out right after a purchase",
    ("b", "low"): "customers seem to drop out right after a purchase",
    ("p", "high"): "each customer's order values barely vary",
    ("q", "high"): "mean spends barely differ between customers",
    ("gamma", "high"): "mean spends barely differ between customers",
}


class ModelError(CrmkitError):
    """The data cannot support the model, or the fit did not converge."""

    exit_code = EXIT_DATA


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n: int = 0
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")
    n: int = 0
    excluded: int = 0  # customers with repeat purchases but mean repeat spend <= 0
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def mean_spend(self) -> float:
        """Population mean spend per transaction, E(M) = p * gamma / (q - 1)."""
        if self.q <= 1:
            return float("inf")
        return self.p * self.gamma / (self.q - 1)


def _arrays(*arrays) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _weights(weights, like: np.ndarray) -> np.ndarray:
    if weights is None:
        return np.ones_like(like)
    return np.asarray(weights, dtype=np.float64)


# --------------------------------------------------------------------------- BG/NBD


def bgnbd_log_likelihood(x, t_x, T, r, alpha, a, b) -> np.ndarray:
    """Per-customer log-likelihood, FHL (2005) eq. 6, in log space.

    ``L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))``

    Both terms are combined with ``logaddexp``, so a frequency in the thousands
    neither overflows nor underflows.
    """
    x, t_x, T = np.broadcast_arrays(*_arrays(x, t_x, T))
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    term1 = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    xr = np.where(repeat, x, 1.0)
    term2 = np.where(repeat, betaln(a + 1, b + xr - 1) - (r + xr) * np.log(alpha + t_x), -np.inf)
    return base + np.logaddexp(term1, term2)


def _bgnbd_objective(x, t_x, T, w):
    """Mean negative log-likelihood and its gradient in log-parameters, for L-BFGS-B.

    Every special function depends on the customer only through the integer
    frequency, so they are evaluated once per distinct frequency (a few hundred
    at most) and gathered; per customer only logs and exps remain.
    """
    ux, inv = np.unique(x, return_inverse=True)
    repeat_u = ux > 0
    xr_u = np.where(repeat_u, ux, 1.0)
    repeat = repeat_u[inv]
    wsum = float(w.sum())

    def f(logp):
        r, alpha, a, b = np.exp(logp)
        log_aT = np.log(alpha + T)
        log_at = np.log(alpha + t_x)
        # per distinct frequency
        bl1 = betaln(a, b + ux)
        bl2 = np.where(repeat_u, betaln(a + 1, b + xr_u - 1), -np.inf)
        lg = gammaln(r + ux) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
        ab = digamma(a + b)
        abx = digamma(a + b + ux)
        d_r_u = digamma(r + ux) - digamma(r) + np.log(alpha)
        d_a1_u = ab - abx
        d_b1_u = digamma(b + ux) - abx - digamma(b) + ab
        d_a2_u = digamma(a + 1) - abx - digamma(a) + ab
        d_b2_u = np.where(repeat_u, digamma(b + xr_u - 1) - abx - digamma(b) + ab, 0.0)
        # per customer
        rx = r + x
        term1 = bl1[inv] - rx * log_aT
        term2 = np.where(repeat, bl2[inv] - rx * log_at, -np.inf)
        lse = np.logaddexp(term1, term2)
        ll = lg[inv] + lse
        w1 = np.exp(term1 - lse)  # share of the "still alive at T" term
        w2 = 1.0 - w1
        d_r = d_r_u[inv] - w1 * log_aT - w2 * log_at
        d_alpha = r / alpha - rx * (w1 / (alpha + T) + w2 / (alpha + t_x))
        d_a = w1 * d_a1_u[inv] + w2 * d_a2_u[inv]
        d_b = w1 * d_b1_u[inv] + w2 * d_b2_u[inv]
        grad = np.array([w @ d_r * r, w @ d_alpha * alpha, w @ d_a * a, w @ d_b * b])
        return -(w @ ll) / wsum, -grad / wsum

    return f


def _check_fit_inputs(name: str, arrays: list[np.ndarray], w: np.ndarray) -> None:
    for arr in arrays:
        if arr.shape != w.shape:
            raise ValueError(f"{name}: input arrays must have the same length")
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"{name}: model inputs contain missing or infinite values")


def _projected_gradient(res) -> float:
    g = np.array(res.jac, dtype=np.float64)
    at_low = (res.x <= _LOG_BOUNDS[0] + 1e-9) & (g > 0)
    at_high = (res.x >= _LOG_BOUNDS[1] - 1e-9) & (g < 0)
    g[at_low | at_high] = 0.0
    return float(np.abs(g).max())


def _minimise(fun, x0, name: str, names: tuple[str, ...]):
    bounds = [_LOG_BOUNDS] * len(x0)
    start = np.asarray(x0, dtype=np.float64)
    for _attempt in range(3):
        with np.errstate(all="ignore"):
            res = minimize(
                fun,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9},
            )
        if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
            break
        # The objective is the mean log-likelihood per customer, so its gradient is
        # scale-free: a line search that gives up ("ABNORMAL") where the gradient is
        # already ~0 has found the optimum to far better than the precision we report.
        if res.success or _projected_gradient(res) < 1e-4:
            res.success = True
            break
        start = res.x  # restart the quasi-Newton memory from where it stopped
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        raise ModelError(
            f"{name} fit failed: the log-likelihood is not finite",
            hint="check the data for a customer with an implausible history (e.g. dates in the future)",
        )
    if not res.success:
        raise ModelError(
            f"{name} fit did not converge ({res.message})",
            hint="use more history (an earlier first date or a later --as-of) or a coarser --time-unit",
        )
    return res, _bound_warnings(name, names, res.x)


def _bound_warnings(name: str, names: tuple[str, ...], logp: np.ndarray) -> tuple[str, ...]:
    """One plain warning naming every parameter that ran to (near) its bound, and what that means."""
    low, high = _LOG_BOUNDS
    hit = {
        n: ("high" if v > 0 else "low")
        for n, v in zip(names, logp, strict=True)
        if v > high - _NEAR_BOUND or v < low + _NEAR_BOUND
    }
    if not hit:
        return ()
    values = [f"{n} = {np.exp(v):.3g}" for n, v in zip(names, logp, strict=True) if n in hit]
    one = len(values) == 1
    listed = values[0] if one else ", ".join(values[:-1]) + " and " + values[-1]
    meanings = [text for (param, side), text in _BOUND_MEANINGS.items() if hit.get(param) == side]
    meaning = (
        "; ".join(dict.fromkeys(meanings)) or "the likelihood keeps improving toward the limit"
    )
    what = "it is a limit, not an estimate" if one else "they are limits, not estimates"
    return (
        f"{name}: the data barely identify the model: {listed} ran to the bounds of the fit, "
        f"so {what} ({meaning}); the predictions rest on {'it' if one else 'them'} and are less reliable",
    )


def fit_bgnbd(x, t_x, T, *, weights=None, initial: dict | None = None) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters ``r, alpha, a, b``.

    ``weights`` (optional) are counts of identical customers. Raises
    ``ModelError`` with fewer than ``MIN_REPEAT_BUYERS`` customers with a repeat
    purchase, or when the optimiser does not converge.
    """
    x, t_x, T = _arrays(x, t_x, T)
    w = _weights(weights, x)
    _check_fit_inputs("BG/NBD", [x, t_x, T], w)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ModelError("BG/NBD: need 0 <= recency <= T and frequency >= 0 for every customer")
    repeaters = float(w[x > 0].sum())
    if repeaters < MIN_REPEAT_BUYERS:
        raise ModelError(
            f"BG/NBD needs at least {MIN_REPEAT_BUYERS} customers with a repeat purchase, found {repeaters:g}",
            hint="use more transaction history (a later --as-of or --calibration-end)",
        )
    wsum = float(w.sum())
    if initial:
        x0 = np.log([initial["r"], initial["alpha"], initial["a"], initial["b"]])
    else:
        # r = 1 and alpha matching the mean purchase rate; a = b = 1 (uniform dropout prior)
        rate = float(w @ (x / np.maximum(T, 1e-9))) / wsum
        alpha0 = 1.0 / max(rate, 1e-6)
        x0 = np.log([1.0, alpha0, 1.0, 1.0])
    res, warnings = _minimise(
        _bgnbd_objective(x, t_x, T, w), x0, "BG/NBD", ("r", "alpha", "a", "b")
    )
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return BGNBDParams(
        r, alpha, a, b, log_likelihood=float(-res.fun * wsum), n=int(round(wsum)), warnings=warnings
    )


def p_alive(x, t_x, T, params: BGNBDParams) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    A customer without a repeat purchase has probability 1: in the BG/NBD a
    customer can only drop out right after a purchase.
    """
    x, t_x, T = np.broadcast_arrays(*_arrays(x, t_x, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    xr = np.where(repeat, x, 1.0)  # keeps log(b + x - 1) defined where it is not used
    log_odds = np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(repeat, expit(-log_odds), 1.0)


def _bracket(r, alpha, a, b, x, T, t):
    """``1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)``, z = t/(alpha+T+t).

    Computed through Euler's transformation
    ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)``, which turns it into
    ``1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``: the first two arguments no
    longer grow with the frequency, so large ``x`` neither overflows the power
    nor slows the series.
    """
    one_minus_z = (alpha + T) / (alpha + T + t)
    z = t / (alpha + T + t)
    return 1.0 - one_minus_z ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)


def _beta_nodes(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes on [0, 1] and weights summing to 1 for the Beta(a, b) density.

    Golub-Welsch on the Jacobi matrix of P^(b-1, a-1); the weights are the squared
    first eigenvector components, so no normalising constant (which overflows for
    a, b in the millions) is ever formed.
    """
    from scipy.linalg import eigh_tridiagonal

    al, be = b - 1.0, a - 1.0  # weight (1-u)^al (1+u)^be on [-1, 1], p = (1+u)/2
    k = np.arange(n, dtype=np.float64)
    s = 2 * k + al + be
    diag = np.empty(n)
    diag[0] = (be - al) / (al + be + 2)
    diag[1:] = (be**2 - al**2) / (s[1:] * (s[1:] + 2))
    k = k[1:]
    s = s[1:]
    off2 = 4 * k * (k + al) * (k + be) * (k + al + be) / (s**2 * (s + 1) * (s - 1))
    off2[0] = (
        4 * (1 + al) * (1 + be) / ((2 + al + be) ** 2 * (3 + al + be))
    )  # k = 1, (s - 1) cancelled
    u, vectors = eigh_tridiagonal(diag, np.sqrt(off2))
    weights = vectors[0] ** 2
    return (1 + u) / 2, weights / weights.sum()


def _alive_expectation_by_quadrature(t, x, T, params: BGNBDParams, nodes: int = 64) -> np.ndarray:
    """E[Y(t) | alive at T, x, T] without hypergeometric functions.

    Given alive, the posterior factorises: lambda ~ Gamma(r+x, alpha+T) and
    p ~ Beta(a, b+x). An alive customer with (lambda, p) buys (1 - e^{-lambda p t})/p
    times in the next t (FHL eq. 7); integrating lambda out leaves
    ``E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p]``, a smooth integrand that Gauss-Jacobi
    quadrature handles to ~1e-12 for any a, b. Used where ``hyp2f1`` breaks down.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t, x, T = np.broadcast_arrays(*_arrays(t, x, T))
    out = np.empty(x.shape)
    flat_t, flat_x, flat_T, flat_out = t.ravel(), x.ravel(), T.ravel(), out.reshape(-1)
    for xv in np.unique(flat_x):
        idx = np.flatnonzero(flat_x == xv)
        p, w = _beta_nodes(a, b + xv, nodes)
        for chunk in np.array_split(idx, max(1, len(idx) // 65536)):
            scale = flat_t[chunk] / (alpha + flat_T[chunk])
            f = -np.expm1(-(r + xv) * np.log1p(np.outer(scale, p))) / p
            flat_out[chunk] = f @ w
    return out


def alive_expected_purchases(t, x, T, params: BGNBDParams) -> np.ndarray:
    """E[Y(t) | alive at T, x, T]: eq. 10 without the P(alive) factor.

    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``

    It does not depend on the recency, so callers can evaluate it once per
    distinct (frequency, T). Numerically safe: ``hyp2f1`` is evaluated through
    Euler's transformation, and any value that comes out non-finite or outside
    ``0 <= E <= t (r+x)/(alpha+T)`` (it does for a, b in the thousands and more,
    e.g. a fit to very regular buyers) is recomputed by quadrature over the
    dropout probability.
    """
    x, T = _arrays(x, T)
    t = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a_safe = a if abs(a - 1.0) > 1e-9 else 1.0 + 1e-9  # removable singularity at a = 1
    with np.errstate(all="ignore"):
        lead = (a_safe + b + x - 1) / (a_safe - 1)
        value = lead * _bracket(r, alpha, a_safe, b, x, T, t)
        upper = t * (r + x) / (alpha + T)  # E[lambda | alive] * t bounds it
    value, upper = np.broadcast_arrays(value, upper)
    value = np.array(value)
    bad = ~np.isfinite(value) | (value < -1e-12) | (value > upper * (1 + 1e-9) + 1e-12)
    if bad.any():
        tb, xb, Tb = (np.broadcast_to(v, value.shape)[bad] for v in (t, x, T))
        value[bad] = _alive_expectation_by_quadrature(tb, xb, Tb, params)
    return np.where(t == 0, 0.0, np.clip(value, 0.0, None))


def conditional_expected_purchases(t, x, t_x, T, params: BGNBDParams) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units, FHL eq. 10.

    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
      / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``

    i.e. ``P(alive) * alive_expected_purchases``. ``t`` may be a scalar or
    broadcast against the customer arrays.
    """
    return p_alive(x, t_x, T, params) * alive_expected_purchases(t, x, T, params)


def unconditional_expected_purchases(t, params: BGNBDParams) -> np.ndarray:
    """E[X(t)] for a customer who just made a first purchase, FHL eq. 9.

    ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``
    (eq. 10 with x = t_x = T = 0).
    """
    t = np.asarray(t, dtype=np.float64)
    zero = np.zeros_like(t)
    return conditional_expected_purchases(t, zero, zero, zero, params)


# ---------------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_log_likelihood(x, m, p, q, gamma) -> np.ndarray:
    """Per-customer log-likelihood of mean spend ``m`` over ``x`` purchases.

    ``f(m | p, q, gamma, x) = G(px+q) / (G(px) G(q)) * gamma^q (m x)^(px-1) x / (gamma + m x)^(px+q)``
    (Fader & Hardie 2013, eq. 3, the density of the mean of ``x`` Gamma(p, nu)
    spends with nu ~ Gamma(q, gamma)).
    """
    x, m = _arrays(x, m)
    mx = m * x
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(mx)
        + np.log(x)
        - (p * x + q) * np.log(gamma + mx)
    )


def _gg_objective(x, m, w):
    """Mean negative log-likelihood and gradient in log-parameters (special functions per distinct x)."""
    ux, inv = np.unique(x, return_inverse=True)
    mx = m * x
    log_mx = np.log(mx)
    log_x = np.log(x)
    wsum = float(w.sum())

    def f(logp):
        p, q, gamma = np.exp(logp)
        pux = p * ux
        psi_pxq_u = digamma(pux + q)
        lg_u = gammaln(pux + q) - gammaln(pux) - gammaln(q)
        dp_u = psi_pxq_u - digamma(pux)
        log_gmx = np.log(gamma + mx)
        px = p * x
        ll = lg_u[inv] + q * np.log(gamma) + (px - 1) * log_mx + log_x - (px + q) * log_gmx
        d_p = x * (dp_u[inv] + log_mx - log_gmx)
        d_q = psi_pxq_u[inv] - digamma(q) + np.log(gamma) - log_gmx
        d_g = q / gamma - (px + q) / (gamma + mx)
        grad = np.array([w @ d_p * p, w @ d_q * q, w @ d_g * gamma])
        return -(w @ ll) / wsum, -grad / wsum

    return f


def fit_gamma_gamma(x, m, *, weights=None) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters ``p, q, gamma``.

    Only customers with ``x > 0`` and ``m > 0`` enter the fit; the number with a
    repeat purchase but a non-positive mean repeat spend (refunds, free orders)
    is returned as ``excluded`` instead of breaking the fit.
    """
    x, m = _arrays(x, m)
    w = _weights(weights, x)
    _check_fit_inputs("Gamma-Gamma", [x, m], w)
    repeat = x > 0
    usable = repeat & (m > 0)
    excluded = int(round(float(w[repeat & ~usable].sum())))
    x, m, w = x[usable], m[usable], w[usable]
    wsum = float(w.sum())
    if wsum < MIN_REPEAT_BUYERS:
        raise ModelError(
            f"Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} customers with a repeat purchase "
            f"and positive mean repeat spend, found {wsum:g} "
            f"({excluded:,} repeat customers excluded for a mean repeat spend <= 0)",
            hint="use more transaction history (a later --as-of or --calibration-end); "
            "p_alive, expected_purchases and --calibration-end do not need the spend model",
        )
    # start at p = 1, q = 2 and gamma matching the mean spend, since E(M) = p gamma / (q - 1)
    mean_m = float(w @ m) / wsum
    x0 = np.log([1.0, 2.0, mean_m])
    res, warnings = _minimise(_gg_objective(x, m, w), x0, "Gamma-Gamma", ("p", "q", "gamma"))
    p, q, gamma = (float(v) for v in np.exp(res.x))
    if q <= 1:
        warnings += (
            "Gamma-Gamma: q <= 1, the population mean spend is not finite; "
            "expected values lean entirely on each customer's own mean",
        )
    return GammaGammaParams(
        p,
        q,
        gamma,
        log_likelihood=float(-res.fun * wsum),
        n=int(round(wsum)),
        excluded=excluded,
        warnings=warnings,
    )


def expected_average_value(x, m, params: GammaGammaParams) -> np.ndarray:
    """E(M | p, q, gamma, m, x) = p (gamma + m x) / (p x + q - 1).

    A weighted mean of the population mean ``p gamma / (q - 1)`` and the
    customer's own mean ``m``; a customer without repeat purchases gets the
    population mean. Negative or zero ``m`` is used as is (it shrinks toward the
    population mean).
    """
    x, m = _arrays(x, m)
    p, q, gamma = params.p, params.q, params.gamma
    mx = np.where(x > 0, m * x, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return p * (gamma + mx) / (p * x + q - 1)


# ------------------------------------------------------------------------------ CLV


def alive_discounted_purchases(
    x, T, params: BGNBDParams, *, horizon: float, discount_rate: float = 0.0
) -> np.ndarray:
    """`discounted_expected_purchases` without the P(alive) factor (per distinct x, T)."""
    x, T = _arrays(x, T)
    if horizon <= 0:
        return np.zeros(np.broadcast(x, T).shape)
    if discount_rate == 0:
        return alive_expected_purchases(horizon, x, T, params)
    k = np.arange(1, int(np.ceil(horizon)) + 1, dtype=np.float64)
    ends = np.minimum(k, horizon)
    total = np.zeros(np.broadcast(x, T).shape)
    previous = np.zeros_like(total)
    # period by period keeps memory at O(customers) rather than O(customers x periods)
    for end, factor in zip(ends, (1.0 + discount_rate) ** -k, strict=True):
        current = alive_expected_purchases(end, x, T, params)
        total += (current - previous) * factor
        previous = current
    return total


def discounted_expected_purchases(
    x, t_x, T, params: BGNBDParams, *, horizon: float, discount_rate: float = 0.0
) -> np.ndarray:
    """Expected purchases over ``horizon`` time units, each discounted to today.

    ``sum_{k=1..K} (E[Y(min(k, H))] - E[Y(k-1)]) / (1 + d)^k`` with ``K = ceil(H)``:
    the purchases expected in period ``k`` (one time unit) are valued at the end
    of that period. With ``d = 0`` this is simply ``E[Y(H)]``.
    """
    return p_alive(x, t_x, T, params) * alive_discounted_purchases(
        x, T, params, horizon=horizon, discount_rate=discount_rate
    )
