"""ECS account settings through boto3: per-principal settings over account
defaults over AWS's defaults, effectiveSettings, deletion, filters, paging and
the validation errors ECS answers."""
import pytest
from botocore.exceptions import ClientError

from conftest import ecs_raw, error_code, error_message

ACCOUNT = "000000000000"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"


def effective(barged, principal, name):
    # by hand: Debian's botocore predates the Setting's "type" member
    status, r = ecs_raw(barged, "ListAccountSettings",
                        {"principalArn": principal, "name": name, "effectiveSettings": True})
    assert status == 200 and len(r["settings"]) == 1
    return r["settings"][0]


def test_aws_defaults_are_effective_until_set(ecs, barged):
    s = effective(barged, ALICE, "containerInsights")
    assert s == {"name": "containerInsights", "value": "disabled", "principalArn": ALICE,
                 "type": "aws_managed"}
    assert effective(barged, ALICE, "taskLongArnFormat")["value"] == "enabled"
    # nothing explicitly set yet
    assert ecs.list_account_settings(principalArn=ALICE)["settings"] == []


def test_principal_setting_overrides_account_default(ecs, barged):
    d = ecs.put_account_setting_default(name="containerInsights", value="enabled")["setting"]
    assert d == {"name": "containerInsights", "value": "enabled", "principalArn": ROOT}
    assert effective(barged, ALICE, "containerInsights")["value"] == "enabled"
    own = ecs.put_account_setting(name="containerInsights", value="disabled",
                                  principalArn=ALICE)["setting"]
    assert own["principalArn"] == ALICE and own["value"] == "disabled"
    assert effective(barged, ALICE, "containerInsights")["value"] == "disabled"
    assert effective(barged, ROLE, "containerInsights")["value"] == "enabled"
    listed = ecs.list_account_settings(principalArn=ALICE)["settings"]
    assert [(x["name"], x["value"]) for x in listed] == [("containerInsights", "disabled")]

    gone = ecs.delete_account_setting(name="containerInsights", principalArn=ALICE)["setting"]
    assert gone["value"] == "disabled"
    assert effective(barged, ALICE, "containerInsights")["value"] == "enabled"
    with pytest.raises(ClientError) as e:
        ecs.delete_account_setting(name="containerInsights", principalArn=ALICE)
    assert error_code(e) == "InvalidParameterException"
    assert "containerInsights" in error_message(e)


def test_caller_is_the_default_principal(ecs, barged):
    s = ecs.put_account_setting(name="awsvpcTrunking", value="enabled")["setting"]
    assert s["principalArn"].startswith(f"arn:aws:iam::{ACCOUNT}:user/")
    listed = ecs.list_account_settings()["settings"]
    assert [(x["name"], x["principalArn"]) for x in listed] == [("awsvpcTrunking",
                                                                 s["principalArn"])]
    # the root user's setting is the account default
    ecs.put_account_setting(name="tagResourceAuthorization", value="off", principalArn=ROOT)
    assert effective(barged, ROLE, "tagResourceAuthorization")["value"] == "off"
    # root-only settings may be set naming the root user
    ecs.put_account_setting(name="fargateTaskRetirementWaitPeriod", value="14", principalArn=ROOT)
    assert effective(barged, ROLE, "fargateTaskRetirementWaitPeriod")["value"] == "14"


def test_effective_settings_cover_every_name_and_page(ecs):
    ecs.put_account_setting(name="containerInsights", value="enhanced", principalArn=ALICE)
    names, token, pages = [], None, 0
    while True:
        kw = {"principalArn": ALICE, "effectiveSettings": True, "maxResults": 4}
        if token:
            kw["nextToken"] = token
        r = ecs.list_account_settings(**kw)
        assert len(r["settings"]) <= 4
        names += [(x["name"], x["value"]) for x in r["settings"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
    assert pages >= 3
    assert len(names) == len({n for n, _ in names}) >= 10
    assert ("containerInsights", "enhanced") in names
    assert ("serviceLongArnFormat", "enabled") in names
    only = ecs.list_account_settings(principalArn=ALICE, effectiveSettings=True,
                                     name="containerInsights", value="enhanced")["settings"]
    assert len(only) == 1
    assert ecs.list_account_settings(principalArn=ALICE, effectiveSettings=True,
                                     name="containerInsights", value="enabled")["settings"] == []


def test_settings_survive_a_restart(barged):
    barged.client("ecs").put_account_setting(name="awsvpcTrunking", value="enabled",
                                             principalArn=ROLE)
    barged.restart()
    s = effective(barged, ROLE, "awsvpcTrunking")
    assert s["value"] == "enabled" and s["type"] == "user"


@pytest.mark.parametrize("call,kw,words", [
    ("put_account_setting", {"name": "containerInsights", "value": "maybe"},
     ["maybe", "containerInsights", "enabled"]),
    ("put_account_setting", {"name": "fargateFIPSMode", "value": "enabled"},
     ["fargateFIPSMode", "root user"]),
    ("put_account_setting", {"name": "fargateTaskRetirementWaitPeriod", "value": "14",
                             "principalArn": ALICE}, ["fargateTaskRetirementWaitPeriod"]),
    ("put_account_setting_default", {"name": "guardDutyActivate", "value": "on"},
     ["guardDutyActivate", "read-only"]),
    ("put_account_setting_default", {"name": "fargateTaskRetirementWaitPeriod", "value": "3"},
     ["'3'", "0, 7, 14"]),
    ("put_account_setting", {"name": "awsvpcTrunking", "value": "enabled",
                             "principalArn": "arn:aws:iam::111111111111:user/bob"},
     ["111111111111"]),
    ("put_account_setting", {"name": "awsvpcTrunking", "value": "enabled",
                             "principalArn": "bob"}, ["'bob'"]),
    ("list_account_settings", {"value": "enabled"}, ["'enabled'", "name"]),
    ("list_account_settings", {"maxResults": 11}, ["maxResults"]),
])
def test_invalid_input_is_rejected(ecs, call, kw, words):
    with pytest.raises(ClientError) as e:
        getattr(ecs, call)(**kw)
    assert error_code(e) == "InvalidParameterException"
    for w in words:
        assert w in error_message(e)


def test_unknown_setting_name_is_rejected(ecs):
    with pytest.raises(ClientError) as e:
        ecs.put_account_setting(name="noSuchSetting", value="enabled")
    assert error_code(e) == "InvalidParameterException"
    assert "noSuchSetting" in error_message(e)
