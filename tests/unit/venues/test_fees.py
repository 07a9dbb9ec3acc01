"""EXEC FEE encoding (livestack.venues.fees): the fee asset's name packed into an int64 and back."""

from livestack.venues.fees import asset_code, asset_name


def test_asset_names_round_trip_and_what_does_not_fit_is_zero():
    for name in ("USDT", "BNB", "BTC", "FDUSD", "1000SATS"):
        code = asset_code(name)
        assert code > 0 and asset_name(code) == name
    assert asset_code("USDT") == 0x5553445400000000
    assert asset_code("TOOLONGNAME") == 0 and asset_code("") == 0 and asset_code("ÜSD") == 0
    assert asset_name(0) == ""
