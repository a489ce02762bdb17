"""Customer lifetime value: BG/NBD purchase counts and Gamma-Gamma spend.

- `crmkit.clv.models`: the models as pure numpy functions (fit, p_alive,
  expectations, discounted purchases).
- `crmkit.clv.frames`: Polars stages from canonical transactions to
  per-customer tables (`summary_data`, `score`, `clv_features`, holdout
  validation, demand forecast).

See docs/clv.md for conventions and every output column's formula.
"""

from crmkit.clv.frames import (
    DEFAULT_HORIZON,
    DEFAULT_TIME_UNIT,
    FEATURE_SCHEMA,
    SCORE_COLUMNS,
    TIME_UNITS,
    FitResult,
    clv_features,
    fit,
    fit_parameters,
    forecast,
    holdout_by_frequency,
    holdout_comparison,
    holdout_errors,
    predict,
    score,
    summary_data,
)
from crmkit.clv.models import (
    MIN_REPEAT_BUYERS,
    BGNBDParams,
    GammaGammaParams,
    ModelError,
    alive_discounted_purchases,
    alive_expected_purchases,
    conditional_expected_purchases,
    discounted_expected_purchases,
    expected_average_value,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    unconditional_expected_purchases,
)

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_TIME_UNIT",
    "FEATURE_SCHEMA",
    "MIN_REPEAT_BUYERS",
    "SCORE_COLUMNS",
    "TIME_UNITS",
    "BGNBDParams",
    "FitResult",
    "GammaGammaParams",
    "ModelError",
    "alive_discounted_purchases",
    "alive_expected_purchases",
    "clv_features",
    "conditional_expected_purchases",
    "discounted_expected_purchases",
    "expected_average_value",
    "fit",
    "fit_parameters",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "forecast",
    "holdout_by_frequency",
    "holdout_comparison",
    "holdout_errors",
    "p_alive",
    "predict",
    "score",
    "summary_data",
    "unconditional_expected_purchases",
]
