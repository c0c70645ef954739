"""Object-level access and the lineage graph."""

import pytest

from mlops_site.common.errors import ApplicationError, NotFoundError
from registry import selectors, services
from tests.registry.factories import csv_bytes, upload

pytestmark = pytest.mark.django_db


def test_members_see_their_teams_only(alice, bob, model_version, foreign_model_version):
    assert [mv.model.name for mv in selectors.model_version_list(user=alice)] == ["credit-scorer"]
    assert [mv.model.name for mv in selectors.model_version_list(user=bob)] == ["churn"]
    assert [m.name for m in selectors.model_list(user=alice)] == ["credit-scorer"]
    assert [d.name for d in selectors.dataset_list(user=bob)] == []


@pytest.mark.parametrize("kind", ["validator", "staff", "superuser", "auditor", "compliance_officer"])
def test_governance_roles_and_staff_see_everything(make_user, model_version, foreign_model_version, kind):
    user = {
        "validator": lambda: make_user("v", roles=["model_validator"]),
        "staff": lambda: make_user("s", is_staff=True),
        "superuser": lambda: make_user("r", is_superuser=True),
        "auditor": lambda: make_user("a", roles=["auditor"]),
        "compliance_officer": lambda: make_user("c", roles=["compliance_officer"]),
    }[kind]()
    assert [mv.model.name for mv in selectors.model_version_list(user=user)] == ["churn", "credit-scorer"]


def test_users_without_team_or_role_see_nothing(make_user, model_version):
    loner = make_user("loner", roles=["ci_service"])
    assert list(selectors.model_version_list(user=loner)) == []
    assert list(selectors.dataset_version_list(user=loner)) == []


def test_get_for_user_reports_foreign_objects_as_missing(alice, foreign_model_version, model_version):
    with pytest.raises(NotFoundError):
        selectors.model_version_get_for_user(user=alice, pk=foreign_model_version.pk)
    with pytest.raises(NotFoundError):
        selectors.model_get_for_user(user=alice, name="churn")
    assert selectors.model_version_get_for_user(user=alice, pk=model_version.pk) == model_version


def test_filters_apply_in_selectors(alice, model, model_version):
    services.model_version_archive(actor=alice, model_version=model_version, reason="x")
    second = services.model_version_register(actor=alice, model=model, artifact=upload(b"v2"))
    assert list(selectors.model_version_list(user=alice, filters={"archived": "false"})) == [second]
    assert list(selectors.model_version_list(user=alice, filters={"archived": "true"})) == [model_version]
    with pytest.raises(ApplicationError) as caught:
        selectors.model_version_list(user=alice, filters={"status": "bogus"})
    assert caught.value.code == "validation_error"


@pytest.fixture
def family(alice, model, dataset, dataset_version, model_version):
    """training data -> v1 -> v2 (child, also evaluated on eval data); a second model trained on the same data."""
    evaluation = services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes("a\n9\n")))
    child = services.model_version_register(actor=alice, model=model, artifact=upload(b"child"), parent=model_version,
                                            evaluation_datasets=[evaluation])
    other_model = services.model_register(actor=alice, name="gbm", team=model.team, risk_tier="high")
    sibling = services.model_version_register(actor=alice, model=other_model, artifact=upload(b"gbm"),
                                              training_datasets=[dataset_version])
    return {"train": dataset_version, "eval": evaluation, "v1": model_version, "v2": child, "gbm": sibling}


def test_lineage_downstream_of_training_data(alice, family):
    # when
    graph = selectors.lineage_graph(user=alice, node=f"dataset_version:{family['train'].pk}")
    # then
    ids = {key: f"{'dataset' if key in ('train', 'eval') else 'model'}_version:{obj.pk}" for key, obj in family.items()}
    assert sorted(n["id"] for n in graph["nodes"]) == sorted([ids["train"], ids["v1"], ids["v2"], ids["gbm"]])
    assert sorted((e["source"], e["target"], e["relation"]) for e in graph["edges"]) == sorted([
        (ids["train"], ids["v1"], "training_data"),
        (ids["train"], ids["gbm"], "training_data"),
        (ids["v1"], ids["v2"], "parent"),
    ])
    node = next(n for n in graph["nodes"] if n["id"] == ids["v1"])
    assert (node["type"], node["label"], node["sha256"]) == ("model_version", "credit-scorer v1",
                                                             family["v1"].artifact_sha256)
    assert graph["truncated"] is False


def test_lineage_upstream_and_downstream_of_a_model_version(alice, family):
    ids = {key: f"{'dataset' if key in ('train', 'eval') else 'model'}_version:{obj.pk}" for key, obj in family.items()}
    graph = selectors.lineage_graph(user=alice, node=ids["v2"])
    assert sorted(n["id"] for n in graph["nodes"]) == sorted([ids["v2"], ids["v1"], ids["eval"], ids["train"]])
    assert sorted((e["source"], e["target"], e["relation"]) for e in graph["edges"]) == sorted([
        (ids["eval"], ids["v2"], "evaluation_data"),
        (ids["v1"], ids["v2"], "parent"),
        (ids["train"], ids["v1"], "training_data"),
    ])


def test_lineage_hides_what_the_user_may_not_see(bob, alice, family, other_team):
    # given: bob's model fine-tuned from alice's v1 (visible to bob only because a superuser registered it)
    root = type(alice).objects.create_superuser("root", password="x")
    bob_model = services.model_register(actor=bob, name="bob-model", team=other_team, risk_tier="minimal")
    bob_version = services.model_version_register(actor=root, model=bob_model, artifact=upload(b"b"),
                                                  parent=family["v1"])
    # when
    graph_for_alice = selectors.lineage_graph(user=alice, node=f"model_version:{family['v1'].pk}")
    graph_for_bob = selectors.lineage_graph(user=bob, node=f"model_version:{bob_version.pk}")
    # then
    assert f"model_version:{bob_version.pk}" not in {n["id"] for n in graph_for_alice["nodes"]}
    assert [n["id"] for n in graph_for_bob["nodes"]] == [f"model_version:{bob_version.pk}"]
    assert graph_for_bob["edges"] == []


@pytest.mark.parametrize("node", ["", "model_version", "model_version:", "model_version:abc", "deployment:1",
                                  "model_version:-1", "dataset_version:1:2", "model_version:" + "9" * 30])
def test_lineage_refuses_malformed_nodes(alice, node):
    with pytest.raises(ApplicationError) as caught:
        selectors.lineage_graph(user=alice, node=node)
    assert (caught.value.code, caught.value.status) == ("invalid_node", 400)


def test_lineage_unknown_or_foreign_node_is_not_found(alice, foreign_model_version):
    for node in ["model_version:999999", f"model_version:{foreign_model_version.pk}", "dataset_version:999999"]:
        with pytest.raises(NotFoundError):
            selectors.lineage_graph(user=alice, node=node)


def test_lineage_providers_add_downstream_nodes(alice, family):
    # given: a provider as governance registers one for deployments
    def deployments(*, user, graph, model_versions):
        for version in model_versions:
            node_id = f"deployment:{version.pk}"
            graph.node_add({"id": node_id, "type": "deployment", "label": f"production ({version})", "sha256": ""})
            graph.edge_add(f"model_version:{version.pk}", node_id, "deployed_as")

    selectors.lineage_downstream_provider_register(deployments)
    try:
        # when
        graph = selectors.lineage_graph(user=alice, node=f"dataset_version:{family['eval'].pk}")
    finally:
        selectors.lineage_downstream_provider_unregister(deployments)
    # then
    v2 = family["v2"].pk
    assert sorted(n["id"] for n in graph["nodes"]) == sorted([f"dataset_version:{family['eval'].pk}",
                                                              f"model_version:{v2}", f"deployment:{v2}"])
    assert {"source": f"model_version:{v2}", "target": f"deployment:{v2}", "relation": "deployed_as"} in graph["edges"]
