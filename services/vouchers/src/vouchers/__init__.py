"""Vouchers: funds, budgets per comune, vouchers, ledger and reimbursements (skeleton)."""
