"""Redis (StatefulSet, its config) and the Secrets the chart makes."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from tests.integration.chart.render import ALTERNATIVES, NAMESPACE, Chart, Rendered, name, pod_spec

from tollgate.local.processes import free_port, redis_server_binary, start_process


class TestRedisStatefulset:
    def test_should_run_one_bundled_redis_with_the_append_only_file_on_a_volume(
        self, default: Rendered
    ) -> None:
        sts = default.get("StatefulSet", name("redis"))
        assert sts["spec"]["replicas"] == 1
        (container,) = pod_spec(sts)["containers"]
        assert container["image"] == "redis:7"
        assert container["args"] == ["redis-server", "/etc/redis/redis.conf"]
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        conf = redis_conf(default)
        assert "appendonly yes" in conf
        assert "appendfsync everysec" in conf

    def test_should_keep_data_in_an_empty_dir_without_persistence(self, chart: Chart) -> None:
        rendered = chart.render(ALTERNATIVES["several vendors, no persistence, one replica"])
        sts = rendered.get("StatefulSet", name("redis"))
        assert "volumeClaimTemplates" not in sts["spec"]
        assert {"name": "data", "emptyDir": {}} in pod_spec(sts)["volumes"]
        assert "appendonly no" in redis_conf(rendered)

    @pytest.mark.parametrize("alternative", ["external redis", "existing secrets"])
    def test_should_not_run_when_an_external_redis_is_named(self, chart: Chart, alternative: str) -> None:
        rendered = chart.render(ALTERNATIVES[alternative])
        assert rendered.of_kind("StatefulSet") == []
        assert rendered.find("Service", name("redis")) is None
        assert rendered.find("NetworkPolicy", name("redis")) is None


def redis_conf(rendered: Rendered) -> str:
    secret = rendered.get("Secret", name("redis"))
    return base64.b64decode(secret["data"]["redis.conf"]).decode()


class TestRedisSecret:
    def test_should_require_a_generated_password_that_the_url_carries(self, default: Rendered) -> None:
        data = {
            k: base64.b64decode(v).decode() for k, v in default.get("Secret", name("redis"))["data"].items()
        }
        assert len(data["password"]) >= 32
        assert f"requirepass {data['password']}\n" in data["redis.conf"]
        assert data["url"] == f"redis://:{data['password']}@tg-redis.{NAMESPACE}.svc.cluster.local:6379/0"

    def test_should_hold_a_redis_conf_a_real_server_runs_with_its_password_and_aof(
        self, default: Rendered, tmp_path: Path
    ) -> None:
        data = {
            k: base64.b64decode(v).decode() for k, v in default.get("Secret", name("redis"))["data"].items()
        }
        port = free_port()
        # The chart's file, then local overrides (later directives win) to run here rather than on 6379;
        # `dir` must be swapped in place, since Redis changes into it as soon as it reads the line.
        assert "dir /data\n" in data["redis.conf"]
        local = data["redis.conf"].replace("dir /data\n", f"dir {tmp_path}\n")
        conf = tmp_path / "redis.conf"
        conf.write_text(f"{local}bind 127.0.0.1\nport {port}\n")
        proc = start_process(
            "redis", [str(redis_server_binary()), str(conf)], ready_port=port, log_dir=tmp_path
        )
        try:
            # A raw PING: redis-py would retry the refusal with backoff for seconds.
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                raw.sendall(b"PING\r\n")
                assert raw.recv(64).startswith(b"-NOAUTH")
            client = redis.Redis(port=port, password=data["password"], decode_responses=True)
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
            client.close()
        finally:
            proc.stop()

    def test_should_hold_the_external_url_when_one_is_given(self, chart: Chart) -> None:
        secret = chart.render(ALTERNATIVES["external redis"]).get("Secret", name("redis"))
        assert base64.b64decode(secret["data"]["url"]).decode() == "rediss://:hunter2@redis.example:6380/0"
        assert set(secret["data"]) == {"url"}


class TestCredentialsSecret:
    def test_should_hold_a_fernet_key_the_app_can_use(self, default: Rendered) -> None:
        secret = default.get("Secret", name("credentials"))
        keys = base64.b64decode(secret["data"]["keys"]).decode()
        (key,) = keys.split(",")
        token = Fernet(key.encode()).encrypt(b"sk_test_x")
        assert Fernet(key.encode()).decrypt(token) == b"sk_test_x"

    def test_should_not_be_rendered_when_an_existing_secret_is_named(self, chart: Chart) -> None:
        assert chart.render(ALTERNATIVES["existing secrets"]).find("Secret", name("credentials")) is None
