"""Serve the genimg dashboard: ``python app.py`` (host/port: see README, Configuration)."""

from genimg.quiet import quiet_libraries

quiet_libraries()

from genimg.ui.app import launch  # noqa: E402  (after quieting library logs)

if __name__ == "__main__":
    launch()
