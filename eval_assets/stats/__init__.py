"""Statistics core of the gate: intervals, paired tests, pass@k, agreement, power and multiplicity.

Plain numpy/scipy, no Dagster: assets call these functions and store the small frozen results they return.
Inputs are numpy arrays, Python sequences or polars Series; bad input (empty, NaN/null, mismatched lengths,
labels outside the declared set, confidence outside (0, 1)) raises ``ValueError`` saying what to do.
Everything random is seeded (``seed=0`` by default), so the same data always give the same numbers.

Which interval for which number:

* accuracy (0/1 per item): :func:`wilson_interval` on the counts, or :func:`bootstrap_mean_ci`;
* real-valued scores: :func:`bootstrap_mean_ci`;
* candidate vs production on shared items: :func:`paired_proportion_difference_interval` (0/1 outcomes; stays
  informative with few or no discordant items, where the bootstrap collapses to [0, 0]),
  :func:`paired_bootstrap_diff` (real-valued scores, or clustered items) and :func:`mcnemar`;
* judge win-rate (both orders per prompt): :func:`cluster_bootstrap_mean` or
  :func:`clustered_wilson_interval`, clustered by prompt;
* pass@1 over several samples per problem: :func:`mean_rate_wilson_interval`;
* pass@k: :func:`pass_at_k_interval`; judge validity: :func:`cohens_kappa`;
* "enough items to decide?": :func:`paired_sample_size`, :func:`minimum_detectable_effect`;
* several suites in one gate decision: :func:`holm`.
"""

from ._agreement import cohens_kappa, fleiss_kappa, ratings_to_table
from ._bootstrap import BootstrapMethod, bootstrap_mean_ci, cluster_bootstrap_mean, paired_bootstrap_diff
from ._mcnemar import mcnemar, mcnemar_from_counts
from ._multiple import holm
from ._paired_proportions import (
    PairedProportionMethod,
    paired_proportion_difference_interval,
    paired_proportion_difference_interval_from_counts,
)
from ._passk import pass_at_k, pass_at_k_interval, pass_at_k_per_problem
from ._power import minimum_detectable_effect, paired_power, paired_sample_size
from ._proportions import (
    clopper_pearson_interval,
    clustered_wilson_interval,
    mean_rate_wilson_interval,
    proportion_interval,
    wilson_interval,
)
from ._types import RESULTS_VERSION, HolmResult, Interval, KappaResult, McNemarResult

__all__ = [
    "RESULTS_VERSION",
    "BootstrapMethod",
    "HolmResult",
    "Interval",
    "KappaResult",
    "McNemarResult",
    "PairedProportionMethod",
    "bootstrap_mean_ci",
    "clopper_pearson_interval",
    "cluster_bootstrap_mean",
    "clustered_wilson_interval",
    "cohens_kappa",
    "fleiss_kappa",
    "holm",
    "mcnemar",
    "mcnemar_from_counts",
    "mean_rate_wilson_interval",
    "minimum_detectable_effect",
    "paired_bootstrap_diff",
    "paired_power",
    "paired_proportion_difference_interval",
    "paired_proportion_difference_interval_from_counts",
    "paired_sample_size",
    "pass_at_k",
    "pass_at_k_interval",
    "pass_at_k_per_problem",
    "proportion_interval",
    "ratings_to_table",
    "wilson_interval",
]
