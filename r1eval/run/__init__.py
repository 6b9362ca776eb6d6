"""One evaluation run: its configuration, plan, schedule, budget, progress and execution."""
