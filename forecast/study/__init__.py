"""The comparison study (``cli.py compare``): plan, executors, summary, report and figures."""
