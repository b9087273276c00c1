import pytest

from lamae.errors import LeadNameError
from lamae.leads import STANDARD_LEADS, canonical_lead, canonical_leads, lead_indices


def test_aliases_map_to_canonical_names():
    assert canonical_lead("AVR") == "aVR"
    assert canonical_lead("avf") == "aVF"
    assert canonical_lead(" v1 ") == "V1"
    assert lead_indices(["aVF", "aVL"]) == [5, 4]
    assert canonical_leads([n.upper() for n in STANDARD_LEADS]) == STANDARD_LEADS


def test_unknown_and_duplicate_leads_name_the_source():
    with pytest.raises(LeadNameError, match="rec42.*'X7'"):
        canonical_lead("X7", source="rec42")
    with pytest.raises(LeadNameError, match="more than once"):
        canonical_leads(["I", "i"], source="rec42")
