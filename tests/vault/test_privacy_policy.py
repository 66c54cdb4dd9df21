"""The privacy policy file: what the shipped one says, and what a broken one is refused for."""

from __future__ import annotations

import pytest

from policies.privacy import PrivacyPolicyError, load_privacy_policy, privacy_policy


def test_the_shipped_policy_names_the_four_purposes_and_a_notice_version():
    policy = privacy_policy()
    assert policy.purpose_codes == {"MARKETING_EMAIL", "MARKETING_SMS", "PERSONALIZATION", "ANALYTICS"}
    assert policy.version


@pytest.mark.parametrize(
    "text",
    [
        '[purposes.ANALYTICS]\ndescription = "x"\n',  # no notice version
        '[notice]\nversion = "1"\n',  # no purposes
        '[notice]\nversion = "1"\n[purposes.analytics]\ndescription = "x"\n',  # not UPPER_SNAKE
        '[notice]\nversion = "1"\n[purposes.ANALYTICS]\ndescription = "x"\nlegal_basis = 3\n',  # unknown key
        '[notice\nversion = "1"\n',  # not TOML
    ],
)
def test_a_broken_policy_file_is_refused_at_load(tmp_path, text):
    path = tmp_path / "privacy.toml"
    path.write_text(text)
    with pytest.raises(PrivacyPolicyError):
        load_privacy_policy(path)
