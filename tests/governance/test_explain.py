"""governance.explain: the explainer follows the model, values add up to the model's output, one-hot
columns fold back into their source column, the sample is bounded, and proxies of sensitive columns are caught."""

import numpy as np
import pandas as pd
import pytest

from governance.explain import cramers_v, explain_compute, explainer_kind, group_labels
from tests.governance.evaluation_factories import FEATURES, credit_frame, credit_pipeline


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return credit_frame(n=500)


def _fitted(kind: str, data: pd.DataFrame):
    return credit_pipeline(kind).fit(data[FEATURES], data["approved"])


@pytest.mark.parametrize(("kind", "explainer"), [("logistic", "linear"), ("boosting", "tree")])
def test_values_fold_one_hot_columns_back_and_add_up_to_the_log_odds(data, kind, explainer):
    # given
    model = _fitted(kind, data)
    # when
    explanation = explain_compute(model=model, features=data[FEATURES], sensitive=data[["sex", "age"]],
                                  positive_label="yes", max_rows=200)
    # then: one column per input column (sex's two one-hot columns are one), in the input's order
    results = explanation.results
    assert results["explainer"] == explainer
    assert explanation.features == ["income", "age", "sex", "postcode_band"]
    assert explanation.values.shape == (200, 4)
    assert results["design_columns"] == 6
    # SHAP is additive: expected value + the row's values = the model's log-odds for "yes"
    log_odds = model.decision_function(explanation.data[FEATURES])
    assert np.allclose(results["expected_value"] + explanation.values.sum(axis=1), log_odds, atol=1e-6)
    importance = {row["feature"]: row["mean_abs_shap"] for row in results["global_importance"]}
    assert importance == pytest.approx({f: float(np.abs(explanation.values[:, i]).mean())
                                        for i, f in enumerate(explanation.features)}, abs=1e-12)
    assert results["top_features"] == [row["feature"] for row in results["global_importance"]][:5]
    assert results["sample"] == {"rows": 200, "of_rows": 500, "max_rows": 200, "seed": 0,
                                 "background_rows": 100 if kind == "logistic" else 0}


def test_other_models_get_the_permutation_explainer_with_a_background_sample(data):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    preprocess = credit_pipeline()[:-1]
    model = Pipeline([*preprocess.steps, ("classifier", KNeighborsClassifier())])
    model.fit(data[FEATURES], data["approved"])
    assert explainer_kind(model) == "permutation"
    explanation = explain_compute(model=model, features=data[FEATURES], sensitive=data[["sex"]],
                                  positive_label="yes", max_rows=40, background_rows=30)
    results = explanation.results
    assert (results["explainer_class"], results["output"]) == ("shap.PermutationExplainer", "probability")
    assert results["sample"]["background_rows"] == 30
    # exact additivity of the permutation explainer: base + values = P(yes)
    probabilities = model.predict_proba(explanation.data[FEATURES])[:, 1]
    assert np.allclose(results["expected_value"] + explanation.values.sum(axis=1), probabilities, atol=1e-6)


def test_a_proxy_of_a_sensitive_column_in_the_top_features_is_flagged(data):
    # given: the sensitive column `sex` is not a model input, but postcode_band stands in for it
    features = ["income", "age", "postcode_band"]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = Pipeline([("preprocess", ColumnTransformer([("c", OneHotEncoder(), ["postcode_band"]),
                                                        ("n", StandardScaler(), ["income", "age"])])),
                      ("classifier", LogisticRegression())]).fit(data[features], data["approved"])
    # when
    results = explain_compute(model=model, features=data[features], sensitive=data[["sex"]], positive_label="yes",
                              top_k=2, proxy_threshold=0.5).results
    # then
    association = cramers_v(data["postcode_band"], data["sex"])
    assert association > 0.7
    proxy = results["proxy_check"]
    assert proxy["passed"] is False
    rank = next(r["rank"] for r in results["global_importance"] if r["feature"] == "postcode_band")
    assert proxy["flags"] == [{"feature": "postcode_band", "rank": rank, "sensitive": "sex",
                               "association": round(association, 12), "reason": "proxy"}]
    assert proxy["associations"]["income"]["sex"] < 0.5
    # with a threshold above the association, nothing is flagged
    strict = explain_compute(model=model, features=data[features], sensitive=data[["sex"]], positive_label="yes",
                             top_k=2, proxy_threshold=0.99).results["proxy_check"]
    assert strict["passed"] is True and strict["flags"] == []


def test_per_group_importance_uses_the_fairness_report_groups(data):
    from governance.fairness import fairness_compute

    model = _fitted("logistic", data)
    fairness = fairness_compute(y_true=data["approved"], y_pred=model.predict(data[FEATURES]),
                                sensitive=data[["sex", "age"]], positive_label="yes")
    labels = group_labels(data[["sex", "age"]], fairness["binning"])
    for feature in ("sex", "age"):
        assert set(labels[feature]) == {g["group"] for g in fairness["features"][feature]["groups"]}
        counts = labels[feature].value_counts().to_dict()
        assert counts == {g["group"]: g["count"] for g in fairness["features"][feature]["groups"]}
    explanation = explain_compute(model=model, features=data[FEATURES], sensitive=data[["sex", "age"]],
                                  group_labels=labels, positive_label="yes", max_rows=500)
    per_group = explanation.results["per_group"]["sex"]
    female = labels["sex"].to_numpy() == "female"
    expected = np.abs(explanation.values[female]).mean(axis=0)
    row = next(g for g in per_group if g["group"] == "female")
    assert row["count"] == int(female.sum())
    assert [row["mean_abs_shap"][f] for f in explanation.features] == pytest.approx(list(expected), abs=1e-12)
