"""Where ext_authz reads vendor objects from: the configured base URLs, else each vendor's own."""

from __future__ import annotations

import pytest

from tollgate.settings import Settings
from tollgate.vendors import VENDORS, default_urls, upstream_name
from tollgate_extauthz.server import vendor_urls


def test_unset_means_every_host_each_vendor_declares() -> None:
    urls = vendor_urls(Settings())
    assert urls == default_urls()
    for vendor in VENDORS.values():
        for host, url in vendor.default_urls.items():
            assert urls[upstream_name(vendor.name, host)] == url
    assert urls["stripe-files"] == VENDORS["stripe"].default_urls["files"]


def test_configured_urls_replace_the_defaults_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_EXTAUTHZ__VENDOR_URLS", '{"stripe": "http://127.0.0.1:12111"}')
    assert vendor_urls(Settings()) == {"stripe": "http://127.0.0.1:12111"}
    monkeypatch.setenv("TOLLGATE_EXTAUTHZ__VENDOR_URLS", "{}")
    assert vendor_urls(Settings()) == {}  # none configured is none, not the defaults
