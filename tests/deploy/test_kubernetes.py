"""deploy/k8s: every overlay renders (kustomize), every object is valid by the Kubernetes
OpenAPI schemas offline (kubernetes-validate; the ServiceMonitor CRD by its own schema,
vendored in deploy/schemas/), secrets by reference only, the autoscalers, network policies
and the migrations Job. (Each CMF container against the topology: test_deploy_topology.py.)"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from deploy_paths import DEPLOY, OVERLAYS, load_yaml
from deployment import Objects, of_kind

K8S_VERSION = "1.33.0"
# Objects of custom resources, validated against their CRD's schema here.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
}
# Custom resources whose schema is not vendored: checked for their required fields only.
UNVALIDATED = {("cert-manager.io/v1", "Certificate"): ("secretName", "issuerRef", "dnsNames")}


def _crd_schema(file: str) -> dict[str, Any]:
    crd = load_yaml(DEPLOY / "schemas" / file)
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_by_its_schema(rendered: Objects, overlay: str) -> None:
    crds = {key: _crd_schema(file) for key, file in CRD_SCHEMAS.items()}
    checked = 0
    for obj in rendered[overlay]:
        key = (obj["apiVersion"], obj["kind"])
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        if key in crds:
            errors = list(jsonschema.Draft7Validator(crds[key]).iter_errors(obj))
            assert not errors, f"{where}: " + "; ".join(e.message for e in errors)
        elif key in UNVALIDATED:
            for field in UNVALIDATED[key]:
                assert field in obj["spec"], f"{where} lacks spec.{field}"
        else:
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{where}: {exc.message} at {list(exc.path)}") from exc
        checked += 1
    assert checked == len(rendered[overlay]) > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_rendered(rendered: Objects, overlay: str) -> None:
    assert not of_kind(rendered[overlay], "Secret")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_projector_scales_on_consumer_lag_not_cpu(rendered: Objects, overlay: str) -> None:
    hpas = of_kind(rendered[overlay], "HorizontalPodAutoscaler")
    projector = hpas["cmf-projector"]["spec"]
    assert [m["type"] for m in projector["metrics"]] == ["External"]
    assert "lag" in projector["metrics"][0]["external"]["metric"]["name"]
    assert projector["maxReplicas"] <= 6  # the partitions of cmf.metadata.v1
    for name in ("cmf-gateway", "cmf-metadata", "cmf-lineage", "cmf-artifacts"):
        assert name in hpas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside(rendered: Objects, overlay: str) -> None:
    policies = of_kind(rendered[overlay], "NetworkPolicy")
    deny = policies["cmf-default-deny-ingress"]["spec"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            sources = rule.get("from")
            open_to_all = sources is None or any(
                "ipBlock" in s or s.get("namespaceSelector") == {} for s in sources
            )
            if open_to_all:
                assert policy["spec"]["podSelector"]["matchLabels"] == {
                    "app.kubernetes.io/name": "cmf-gateway"
                }, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migrations_job_runs_cmf_server_migrate(rendered: Objects, overlay: str) -> None:
    job = of_kind(rendered[overlay], "Job")["cmf-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    env = {e["name"] for e in container["env"]}
    assert {f"{s.upper()}_DATABASE_URL" for s in ("metadata", "artifacts", "lineage")} <= env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_alert_rules_are_those_compose_s_prometheus_loads(
    rendered: Objects, overlay: str
) -> None:
    rule = of_kind(rendered[overlay], "PrometheusRule")["cmf-server"]
    alerts = load_yaml(DEPLOY / "grafana" / "alerts" / "cmf-server.yml")
    # deploy/k8s/base/prometheusrule.yaml's groups are deploy/grafana/alerts/cmf-server.yml's.
    assert rule["spec"]["groups"] == alerts["groups"]
