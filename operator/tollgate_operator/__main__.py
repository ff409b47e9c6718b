"""python -m tollgate_operator: the operator with settings from the environment; the same as
`kopf run -m tollgate_operator.handlers` with -A or --namespace, --standalone or --peering."""

from __future__ import annotations

import kopf

from tollgate_operator.settings import ProcessSettings


def main() -> None:
    settings = ProcessSettings()
    level = settings.log_level.upper()
    fmt = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(debug=level == "DEBUG", quiet=level in ("WARNING", "ERROR", "CRITICAL"), log_format=fmt)
    import tollgate_operator.handlers  # noqa: F401  (registers every handler, as `kopf run -m` would)

    op = settings.operator
    kopf.run(
        clusterwide=not op.namespaces,
        namespaces=op.namespaces,
        standalone=op.peering is None,
        peering_name=op.peering,
        liveness_endpoint=op.liveness_endpoint,
        memo=kopf.Memo(settings=settings),
    )


if __name__ == "__main__":
    main()
