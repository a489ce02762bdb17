"""BG/NBD and Gamma-Gamma: published CDNOW figures and independent numeric checks."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl
import pytest
from helpers import DATA
from scipy import integrate
from scipy.optimize import approx_fprime

from crmkit import clv
from crmkit.clv import models
from crmkit.clv.models import BGNBDParams, GammaGammaParams, ModelError

CDNOW = DATA / "cdnow_sample.csv"
CAL_END = date(1997, 9, 30)
END = date(1998, 6, 30)
# Fader, Hardie & Lee (2005), CDNOW calibration period, weeks
PUBLISHED = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def cdnow() -> pl.LazyFrame:
    return pl.scan_csv(CDNOW, schema_overrides={"customer_id": pl.String}).with_columns(
        pl.col("date").str.to_date()
    )


@pytest.fixture(scope="module")
def calibration() -> pl.DataFrame:
    return clv.summary_data(cdnow(), as_of=END, calibration_end=CAL_END, time_unit="week").collect()


@pytest.fixture(scope="module")
def fitted(calibration) -> clv.FitResult:
    return clv.fit(calibration.select("customer_id", "frequency", "recency", "T", "monetary_value"))


# ------------------------------------------------------------------ published figures


def test_cdnow_summary_counts(calibration):
    assert calibration.height == 2357
    assert calibration["frequency"].sum() == 2457  # repeat purchases in calibration
    assert calibration["frequency_holdout"].sum() == 1882
    assert (calibration["frequency"] > 0).sum() == 946
    assert calibration["duration_holdout"][0] == pytest.approx(39.0)


def test_cdnow_bgnbd_estimates(fitted):
    bg = fitted.bgnbd
    for name, published in PUBLISHED.as_dict().items():
        assert getattr(bg, name) == pytest.approx(published, rel=0.01), name
    assert bg.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    assert bg.n == 2357


def test_cdnow_gamma_gamma_estimates(fitted):
    gg = fitted.gamma_gamma
    assert gg.p == pytest.approx(6.25, rel=0.01)
    assert gg.q == pytest.approx(3.74, rel=0.01)
    assert gg.gamma == pytest.approx(15.44, rel=0.01)
    assert gg.n == 946
    assert gg.excluded == 0


def test_published_conditional_and_unconditional_expectation(fitted):
    # the paper's figures come from the unrounded estimates, i.e. our fit
    cond = models.conditional_expected_purchases(39, 2, 30.43, 38.86, fitted.bgnbd)
    assert float(cond) == pytest.approx(1.226, abs=0.0005)
    assert float(models.unconditional_expected_purchases(52, fitted.bgnbd)) == pytest.approx(
        1.444, abs=0.0005
    )
    # the rounded published parameters land close too
    assert float(
        models.conditional_expected_purchases(39, 2, 30.43, 38.86, PUBLISHED)
    ) == pytest.approx(1.226, abs=0.002)
    assert float(models.unconditional_expected_purchases(52, PUBLISHED)) == pytest.approx(
        1.444, abs=0.003
    )


# ------------------------------------------------------------ independent references


def plain_log_likelihood(x, t_x, T, r, alpha, a, b):
    """FHL (2005) eq. 6 written out term by term with math.lgamma."""

    def lbeta(u, v):
        return math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)

    common = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    first = math.exp(lbeta(a, b + x) - lbeta(a, b) + common - (r + x) * math.log(alpha + T))
    second = 0.0
    if x > 0:
        second = math.exp(
            lbeta(a + 1, b + x - 1) - lbeta(a, b) + common - (r + x) * math.log(alpha + t_x)
        )
    return math.log(first + second)


def posterior_integrals(x, t_x, T, t, p: BGNBDParams):
    """E[Y(t)|x,t_x,T] and P(alive) by direct 2-D integration over lambda and p.

    Given (lambda, p) the history has likelihood (1-p)^x lambda^x e^{-lambda T}
    (still alive at T) + [x>0] p (1-p)^(x-1) lambda^x e^{-lambda t_x} (dropped out
    after the last purchase); an alive customer buys (1/p)(1 - e^{-lambda p t})
    times in the next t (FHL eq. 7). Substituting lambda = u^(1/r), p = v^(1/a)
    absorbs the prior's singular factors lambda^(r-1) and p^(a-1).
    """
    r, alpha, a, b = p.r, p.alpha, p.a, p.b

    def parts(v, u):
        lam = u ** (1 / r)
        q = v ** (1 / a)
        prior = math.exp(-alpha * lam) * (1 - q) ** (b - 1)
        alive = (1 - q) ** x * lam**x * math.exp(-lam * T)
        dead = q * (1 - q) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
        future = (1 - math.exp(-lam * q * t)) / q if q > 0 else lam * t
        return prior, alive, dead, future

    upper = (60.0 / (alpha + t_x)) ** r  # e^{-lambda (alpha + t_x)} < e^-60 beyond
    opts = dict(epsabs=0, epsrel=1e-10)
    num = integrate.dblquad(
        lambda v, u: parts(v, u)[0] * parts(v, u)[1] * parts(v, u)[3], 0, upper, 0, 1, **opts
    )[0]
    alive = integrate.dblquad(lambda v, u: parts(v, u)[0] * parts(v, u)[1], 0, upper, 0, 1, **opts)[
        0
    ]
    dead = integrate.dblquad(lambda v, u: parts(v, u)[0] * parts(v, u)[2], 0, upper, 0, 1, **opts)[
        0
    ]
    return num / (alive + dead), alive / (alive + dead)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(
    "x,t_x,T,t",
    [(2, 30.43, 38.86, 39.0), (0, 0.0, 20.0, 10.0), (5, 12.0, 40.0, 52.0), (1, 3.0, 3.5, 4.0)],
)
def test_expectation_and_p_alive_match_numeric_integration(x, t_x, T, t):
    expected, alive = posterior_integrals(x, t_x, T, t, PUBLISHED)
    got = float(models.conditional_expected_purchases(t, x, t_x, T, PUBLISHED))
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(models.p_alive(x, t_x, T, PUBLISHED)) == pytest.approx(alive, rel=1e-6)


def test_p_alive_without_repeat_purchase_is_one():
    assert models.p_alive([0, 0], [0.0, 0.0], [1.0, 500.0], PUBLISHED).tolist() == [1.0, 1.0]


def test_p_alive_closed_form_by_hand():
    # 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)) with x=3, t_x=10, T=20
    r, alpha, a, b = 0.5, 2.0, 1.5, 3.0
    by_hand = 1 / (1 + a / (b + 2) * ((2 + 20) / (2 + 10)) ** 3.5)
    got = models.p_alive([3], [10.0], [20.0], BGNBDParams(r, alpha, a, b))[0]
    assert got == pytest.approx(by_hand, rel=1e-12)


def test_log_likelihood_matches_plain_formula():
    cases = [(0, 0.0, 30.0), (1, 5.0, 30.0), (4, 25.0, 26.0), (12, 70.0, 78.0)]
    params = (0.8, 3.0, 1.3, 2.2)
    got = models.bgnbd_log_likelihood(*zip(*cases, strict=True), *params)
    for value, case in zip(got, cases, strict=True):
        assert value == pytest.approx(plain_log_likelihood(*case, *params), rel=1e-12)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 15, 200).astype(float)
    T = rng.uniform(5, 60, 200)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 200), 0.0)
    w = rng.integers(1, 4, 200).astype(float)
    theta = np.log([0.7, 4.0, 0.9, 2.5])
    objective = models._bgnbd_objective(x, t_x, T, w)
    f, g = objective(theta)
    # the value is the weighted mean of the per-customer log-likelihood written out elsewhere
    assert f == pytest.approx(
        -(w @ models.bgnbd_log_likelihood(x, t_x, T, *np.exp(theta))) / w.sum(), rel=1e-12
    )
    num = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-7)

    m = rng.uniform(5, 80, 200)
    xs = np.maximum(x, 1)
    theta = np.log([3.0, 2.5, 20.0])
    objective = models._gg_objective(xs, m, w)
    f, g = objective(theta)
    assert f == pytest.approx(
        -(w @ models.gamma_gamma_log_likelihood(xs, m, *np.exp(theta))) / w.sum(), rel=1e-12
    )
    num = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-7)


def test_stable_for_large_frequency():
    x = np.array([500.0, 5000.0])
    t_x = np.array([300.0, 360.0])
    T = np.array([365.0, 365.0])
    ll = models.bgnbd_log_likelihood(x, t_x, T, *PUBLISHED.as_dict().values())
    assert np.all(np.isfinite(ll))
    alive = models.p_alive(x, t_x, T, PUBLISHED)
    expected = models.conditional_expected_purchases(52.0, x, t_x, T, PUBLISHED)
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected))
    # a very active customer keeps roughly their rate: x/T purchases per unit while alive
    assert expected[1] == pytest.approx(alive[1] * 5000 / 365 * 52, rel=0.2)


def test_gamma_gamma_density_matches_numeric_integration():
    # mean of x Gamma(p, nu) spends, nu ~ Gamma(q, gamma): integrate nu out numerically
    p, q, g = 6.0, 3.5, 15.0
    for x, m in [(1, 20.0), (4, 35.0), (9, 12.5)]:

        def integrand(nu, x=x, m=m):
            s = x * m
            log_sum = p * x * math.log(nu) + (p * x - 1) * math.log(s) - nu * s - math.lgamma(p * x)
            log_nu = q * math.log(g) + (q - 1) * math.log(nu) - g * nu - math.lgamma(q)
            return math.exp(log_sum + log_nu) * x

        density = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11)[0]
        got = models.gamma_gamma_log_likelihood([x], [m], p, q, g)[0]
        assert got == pytest.approx(math.log(density), rel=1e-8)


def test_expected_average_value_is_weighted_mean():
    gg = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    population = 6.25 * 15.44 / (3.74 - 1)
    x, m = 3.0, 40.0
    weight = 6.25 * x / (6.25 * x + 3.74 - 1)
    by_hand = (1 - weight) * population + weight * m
    got = models.expected_average_value([x, 0.0], [m, 0.0], gg)
    assert got[0] == pytest.approx(by_hand, rel=1e-12)
    assert got[1] == pytest.approx(population, rel=1e-12)


def test_discounted_purchases():
    x, t_x, T = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0])
    plain = models.discounted_expected_purchases(
        x, t_x, T, PUBLISHED, horizon=10, discount_rate=0.0
    )
    np.testing.assert_allclose(
        plain, models.conditional_expected_purchases(10, x, t_x, T, PUBLISHED)
    )
    d = 0.05
    got = models.discounted_expected_purchases(x, t_x, T, PUBLISHED, horizon=2.5, discount_rate=d)

    def e(t):
        return models.conditional_expected_purchases(t, x, t_x, T, PUBLISHED)

    by_hand = e(1) / 1.05 + (e(2) - e(1)) / 1.05**2 + (e(2.5) - e(2)) / 1.05**3
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    assert np.all(got < e(2.5))


def test_too_few_repeat_buyers_is_a_model_error():
    x = np.array([0, 0, 0, 1, 2] * 2, dtype=float)  # 4 repeat buyers
    T = np.full_like(x, 30.0)
    t_x = np.where(x > 0, 10.0, 0.0)
    with pytest.raises(ModelError, match="at least 10 customers with a repeat purchase, found 4"):
        models.fit_bgnbd(x, t_x, T)
    with pytest.raises(ModelError, match="Gamma-Gamma needs at least 10"):
        models.fit_gamma_gamma(x, np.where(x > 0, 25.0, 0.0))


def test_spend_fit_leaves_out_non_positive_means():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 300).astype(float)
    m = rng.gamma(6.0, 5.0, 300)
    base = models.fit_gamma_gamma(x, m)
    bad_x = np.concatenate([x, [2.0, 3.0, 1.0]])
    bad_m = np.concatenate([m, [0.0, -12.5, -3.0]])
    with_bad = models.fit_gamma_gamma(bad_x, bad_m)
    assert with_bad.excluded == 3
    assert with_bad.n == 300
    assert (with_bad.p, with_bad.q, with_bad.gamma) == pytest.approx(
        (base.p, base.q, base.gamma), rel=1e-6
    )


def simulate_bgnbd(n, r, alpha, a, b, T, rng):
    """Draw (x, t_x) for n customers observed for T time units from their first purchase."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, np.full(n, float(T))


def test_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(42)
    truth = dict(r=0.5, alpha=6.0, a=0.8, b=2.5)
    x, t_x, T = simulate_bgnbd(20_000, **truth, T=52, rng=rng)
    fit = models.fit_bgnbd(x, t_x, T)
    assert fit.r == pytest.approx(truth["r"], rel=0.1)
    assert fit.alpha == pytest.approx(truth["alpha"], rel=0.15)
    # a and b are less well identified; their ratio (mean dropout) is tight
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.8 / 3.3, rel=0.15)


def beta_expectation_by_quad(t, x, T, p: BGNBDParams) -> float:
    """E[Y(t) | alive] = E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p], p ~ Beta(a, b+x), by scipy quad."""
    from scipy.special import betaln

    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    mean = a / (a + b + x)
    sd = math.sqrt(mean * (1 - mean) / (a + b + x + 1))

    def f(q):
        future = -math.expm1(-(r + x) * math.log1p(q * t / (alpha + T))) / q
        return future * math.exp(
            (a - 1) * math.log(q) + (b + x - 1) * math.log1p(-q) - betaln(a, b + x)
        )

    return integrate.quad(
        f, max(mean - 15 * sd, 1e-300), min(mean + 15 * sd, 1.0), epsabs=0, epsrel=1e-12, limit=200
    )[0]


@pytest.mark.parametrize("a,b", [(3000.0, 20000.0), (196049.0, 3268805.0)])
def test_expectation_safe_where_hyp2f1_breaks_down(a, b):
    # very regular buyers drive a and b to huge values; hyp2f1 returns nan there
    params = BGNBDParams(r=5.0, alpha=4.3, a=a, b=b)
    x = np.array([0.0, 3.0, 60.0])
    t_x = np.array([0.0, 15.0, 30.0])
    T = np.array([30.0, 30.0, 34.0])
    got = models.conditional_expected_purchases(26.0, x, t_x, T, params)
    alive = models.p_alive(x, t_x, T, params)
    for i in range(3):
        expected = alive[i] * beta_expectation_by_quad(26.0, x[i], T[i], params)
        assert got[i] == pytest.approx(expected, rel=1e-7)


def test_quadrature_agrees_with_hyp2f1_where_both_work():
    params = BGNBDParams(r=0.7, alpha=5.0, a=2.5, b=9.0)
    x = np.arange(0, 40, dtype=float)
    T = np.linspace(5, 80, 40)
    direct = (
        (params.a + params.b + x - 1)
        / (params.a - 1)
        * models._bracket(params.r, params.alpha, params.a, params.b, x, T, 52.0)
    )
    np.testing.assert_allclose(
        models._alive_expectation_by_quadrature(52.0, x, T, params), direct, rtol=1e-9
    )
