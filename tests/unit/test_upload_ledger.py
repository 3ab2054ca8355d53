"""The upload quotas' ledger (clinic/quotas.py): uploads in flight count, failed ones give back."""

from __future__ import annotations

import pytest

from clinic.errors import QuotaExceeded
from clinic.quotas import UploadLedger, UploadQuota

QUOTA = UploadQuota(per_side=100, per_consultation=150)


def test_uploads_in_flight_share_the_quota_and_failures_give_back() -> None:
    ledger = UploadLedger()
    for _ in range(2):
        ledger.begin("c")
    ledger.load("c", {"patient": 40})
    ledger.load("c", {"patient": 0})  # a later reading of the same entry changes nothing
    ledger.add("c", "patient", 30, QUOTA)
    with pytest.raises(QuotaExceeded) as refused:
        ledger.add("c", "patient", 31, QUOTA)  # 40 stored + 30 in flight + 31 > 100
    assert refused.value.scope == "side"
    ledger.add("c", "practitioner", 80, QUOTA)
    with pytest.raises(QuotaExceeded) as refused:
        ledger.add("c", "patient", 1, QUOTA)  # 40 + 30 + 80 + 1 > 150
    assert refused.value.scope == "consultation"
    ledger.end("c", "practitioner", 80, kept=False)  # failed: its bytes come back
    ledger.add("c", "patient", 30, QUOTA)
    ledger.end("c", "patient", 60, kept=True)


def test_an_upload_ending_while_another_reads_the_database_keeps_the_entry() -> None:
    ledger = UploadLedger()
    ledger.begin("c")
    ledger.load("c", {})
    ledger.add("c", "patient", 90, QUOTA)
    ledger.begin("c")  # a second upload starts, then reads the database...
    ledger.end("c", "patient", 90, kept=True)  # ...while the first one is published and ends
    ledger.load("c", {})  # a reading that missed the first one's bytes is not used
    with pytest.raises(QuotaExceeded):
        ledger.add("c", "patient", 20, QUOTA)
