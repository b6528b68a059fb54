"""Intake: calls (avvisi), application forms, receipts and tracking of applications."""
