"""The demo's case descriptions: the phrase banks and the writer that fills them.

Descriptions are written the way reporters, associates and detection systems
write them: several voices per category, each assembled from an opener, a core
sentence, a detail and sometimes contact details (fake personal data, so that
masking can be tested). The product of the parts gives thousands of distinct
texts per category. Slots in braces are filled vectorised by :func:`describe`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analytics.demo.tuning import AUTOMATED, CATS, INTERNAL

__all__ = [
    "describe",
    "REPORTER_OPENERS",
    "ASSOCIATE_OPENERS",
    "SYSTEM_OPENERS",
    "CORE",
    "DETAIL",
    "SYSTEM_CORE",
    "PII_SENTENCES",
    "CLOSERS",
    "SCAM_CORE",
    "SCAM_DETAIL",
    "SLOTS",
]

SLOTS = ("{provider}", "{name}", "{phone}", "{email}", "{amount}", "{n}", "{when}")

REPORTER_OPENERS: tuple[str, ...] = (
    "", "Hi, ", "Hello, ", "I want to report this. ", "Not sure where else to send this. ",
    "Please look into this. ", "This is the second time I'm writing. ", "Urgent: ",
    "Reporting on behalf of my mother. ", "I'm a patient here and ", "Hi team, ",
    "Writing from the front desk of the practice. ", "To whom it may concern, ",
    "Just want to flag something. ", "Honestly I'm upset. ",
)  # fmt: skip

ASSOCIATE_OPENERS: tuple[str, ...] = (
    "Reviewed: ", "Associate note: ", "Escalated from queue. ", "Triage: ",
    "Follow-up on prior report. ", "Investigated. ", "Per reporter, ", "Checked history. ",
    "Summary: ", "Case notes: ",
)  # fmt: skip

SYSTEM_OPENERS: tuple[str, ...] = (
    "Auto-flag: ", "Rule match: ", "Model score above threshold. ", "Detector alert: ",
    "Automated review: ", "Signal: ",
)  # fmt: skip

CLOSERS: tuple[str, ...] = (
    "", "", "", " Thanks.", " Please help.", " Thank you for looking into it.",
    " This needs to stop.", " I can send screenshots.", " Let me know if you need more.",
    " Please call me back.", " I have the messages saved.",
)  # fmt: skip

# Core sentences by category, as a reporter or associate would write them.
CORE: dict[str, tuple[str, ...]] = {
    "fake_review": (
        "{provider} has a wave of 5-star reviews from accounts that never booked",
        "the new reviews on {provider}'s profile all read the same and were posted minutes apart",
        "I think {provider} is buying reviews, {n} glowing ones appeared overnight",
        "a reviewer left five stars for {provider} without ever having an appointment",
        "these reviews for {provider} look copy-pasted, same phrases, same day",
        "someone is posting fake positive reviews for {provider} from brand-new accounts",
        "reviews for {provider} jumped by {n} in a day, none of the accounts look real",
        "the 5 star reviews on {provider} mention a visit that the practice says never happened",
    ),
    "review_extortion": (
        "a patient threatened to leave a one-star review of {provider} unless we refund {amount}",
        "we were told the bad review would be removed if we paid {amount}",
        "the reviewer messaged our office demanding free visits in exchange for deleting a review",
        "someone is asking for money to take down negative reviews about {provider}",
        "a user said they'd post {n} bad reviews unless {provider} waived the no-show fee",
        "patient demanded a {amount} credit or they would trash {provider} online",
    ),
    "harassment": (
        "{provider}'s staff keep getting abusive messages from the same patient",
        "a patient sent {n} threatening messages after the appointment was cancelled",
        "I'm being harassed through the messaging feature by someone I saw once",
        "the user keeps messaging me insults after I asked them to stop",
        "after a bad visit the patient started sending repeated hostile messages to {provider}",
        "threats in the chat, they said they know where the office is",
        "received messages calling me names and saying I should be afraid",
    ),
    "hate_speech": (
        "a review of {provider} contains slurs about the doctor's ethnicity",
        "the message used hateful language about my religion",
        "a review attacks {provider} with racist comments",
        "someone posted a comment demeaning people based on their disability",
        "the user's profile text has hateful statements about a group",
        "review text contains hate speech directed at staff",
    ),
    "spam": (
        "getting the same promotional message {n} times a day",
        "someone is posting links to a supplement shop in reviews",
        "the account sends ads for weight-loss pills to every provider",
        "spam messages advertising cheap prescriptions",
        "a review of {provider} is just a link to an unrelated website",
        "bulk messages offering discounted telehealth from an outside site",
    ),
    "fraudulent_booking": (
        "someone booked {n} appointments with {provider} under fake names",
        "bookings are being made with stolen insurance details",
        "the same person booked every slot this week and never confirmed",
        "appointments booked at {provider} with a name that doesn't match the ID at check-in",
        "we had {n} bookings from accounts that all used the same card",
        "fake appointment requests are blocking our schedule",
    ),
    "no_show_abuse": (
        "the patient has not shown up {n} times and keeps rebooking",
        "repeated no-shows from the same account at {provider}",
        "this user books and never comes, {n} times this month",
        "patient books multiple providers for the same time and shows up to none",
        "another no-show, that's {n} in a row for this patient",
    ),
    "impersonation": (
        "someone created a profile pretending to be {provider}",
        "an account is using my name and photo",
        "a user is messaging patients claiming to be the office manager at {provider}",
        "this profile copies our practice's details and logo",
        "somebody is impersonating a nurse from {provider} in messages",
        "a fake account uses my late father's name",
    ),
    "credential_misrepresentation": (
        "{provider} lists a board certification that doesn't exist",
        "the license number on {provider}'s profile belongs to someone else",
        "this provider claims to be an MD but the state board shows no license",
        "{provider} advertises a specialty they are not certified in",
        "the credentials on the profile expired years ago",
        "profile says fellowship trained, the program has no record of them",
    ),
    "account_takeover": (
        "my account was accessed from a device I don't own and my email was changed",
        "I got a password reset I never asked for and now I can't log in",
        "someone logged into my account and booked appointments I didn't make",
        "my profile details were changed {when} and I didn't do it",
        "I was locked out after a login from another state",
        "strange logins on my account, then my saved card was used",
    ),
    "payment_fraud": (
        "there are charges of {amount} I don't recognise from bookings I didn't make",
        "my card was charged {n} times for appointments at {provider}",
        "a stolen card was used to pay for visits",
        "chargeback received for {amount}, patient says they never booked",
        "someone used my payment method to book with {provider}",
        "multiple failed payments then a successful charge of {amount} on my card",
    ),
    "health_info_exposure": (
        "a review of {provider} reveals another patient's diagnosis",
        "someone posted my test results in a public review",
        "the message thread shows a screenshot with another patient's chart",
        "a user shared details of my medical condition in a review",
        "{provider}'s reply to a review disclosed the patient's treatment",
        "a public comment includes a patient's full name and medication",
    ),
    "off_platform_solicitation": (
        "{provider}'s office asked me to pay outside the platform by wire transfer",
        "the provider keeps asking patients to book through a personal number to avoid fees",
        "I was told to cancel here and pay {amount} in cash directly",
        "user is directing patients to an outside clinic website",
        "messages ask patients to continue the conversation on another app",
        "they offered a discount if I booked off the platform",
    ),
    "other": (
        "something seems off with {provider}'s listing",
        "I'm not sure which category this is, but the office hours listed are wrong and staff were rude",
        "the address on the profile leads to an empty lot",
        "a user keeps editing their review every day",
        "I think the practice closed but the profile is still taking bookings",
        "general complaint about how {provider} handled my visit",
        "the map pin for {provider} is in the wrong city",
        "the booking confirmation had someone else's appointment time",
    ),
}

DETAIL: tuple[str, ...] = (
    "", "", "This happened {when}.", "It started {when}.", "It has happened {n} times now.",
    "I reported it before and nothing changed.", "Other patients have seen it too.",
    "Screenshots are attached.", "The account was created recently.",
    "It happened on the app.", "It happened on the website.", "Staff confirmed it.",
    "It's been going on since {when}.", "Total so far is {amount}.",
)  # fmt: skip

# What automated rules and models write: terse, signal-style.
SYSTEM_CORE: dict[str, tuple[str, ...]] = {
    "fake_review": (
        "review velocity for {provider} {n}x baseline; reviewer accounts younger than 7 days",
        "rating burst: {n} five-star reviews within 2h sharing device fingerprints",
        "near-duplicate review text cluster targeting {provider}",
    ),
    "review_extortion": (
        "message classifier: extortion language linked to review removal",
        "payment demand detected in thread with {provider}",
    ),
    "harassment": (
        "toxicity score high across {n} messages to the same recipient",
        "repeated contact after block request, {n} messages",
    ),
    "hate_speech": (
        "hate lexicon match in review text",
        "classifier flagged slur in message, confidence high",
    ),
    "spam": (
        "identical message sent to {n} recipients in 1h",
        "outbound link to known spam domain in review",
    ),
    "fraudulent_booking": (
        "{n} bookings from one payment instrument across accounts",
        "booking velocity anomaly at {provider}",
    ),
    "no_show_abuse": (
        "no-show count {n} in 30 days exceeds policy",
        "overlapping bookings at {n} providers for one slot",
    ),
    "impersonation": (
        "profile name and photo similarity to {provider} above threshold",
        "display name matches verified provider, account unverified",
    ),
    "credential_misrepresentation": (
        "license lookup mismatch for {provider}",
        "board certification not found in registry",
    ),
    "account_takeover": (
        "login from new device and new region followed by email change",
        "{n} failed logins then success from unseen IP",
    ),
    "payment_fraud": (
        "card BIN velocity: {n} declines then approval",
        "chargeback risk score high on booking with {provider}",
    ),
    "health_info_exposure": (
        "PHI pattern detected in public review",
        "medical record number pattern in message attachment text",
    ),
    "off_platform_solicitation": (
        "phone number and payment request in message to patient",
        "external booking link in provider reply",
    ),
    "other": (
        "profile data inconsistency flagged for {provider}",
        "unusual edit frequency on listing",
    ),
}

PII_SENTENCES: tuple[str, ...] = (
    " You can reach me at {phone}.",
    " My email is {email}.",
    " The person said their name was {name}.",
    " Call me back on {phone} please.",
    " Contact: {name}, {email}.",
    " They called from {phone}.",
    " The account belongs to {name} ({email}).",
    " My name is {name}, phone {phone}.",
)  # fmt: skip

# The injected new scam: its own vocabulary, never seen before its start.
SCAM_CORE: tuple[str, ...] = (
    "someone called claiming to be from my insurance verification department and asked for my member ID before my visit with {provider}",
    "a caller said my coverage had to be re-verified or my booking with {provider} would be cancelled",
    "got a call from a so-called benefits verification line asking me to confirm my policy number and date of birth",
    "they said insurance pre-authorization failed and I had to pay a {amount} verification fee by gift card",
    "caller ID showed the clinic name but the person wanted my insurance member ID and a prepayment",
    "a woman claiming to work for the insurance verification team asked me to read out my card details",
    "I received a call about re-verifying my coverage, they asked for {amount} in gift cards to keep the appointment",
    "the call said my plan eligibility check failed and asked for my subscriber ID and bank details",
    "somebody pretending to verify my insurance for {provider} wanted payment through a prepaid card",
    "insurance verification call, they knew my appointment time and asked for my member number",
)  # fmt: skip

SCAM_DETAIL: tuple[str, ...] = (
    "", "They knew the time of my appointment.", "The number looked like the clinic's.",
    "They said it was required before the visit.", "I almost paid.",
    "My neighbour got the same call.", "They asked for gift cards.",
    "The practice says they never call for verification.", "It happened {when}.",
)  # fmt: skip


def describe(rng: np.random.Generator, c: pl.DataFrame, names: pl.DataFrame) -> pl.Series:
    """Free text per case: voice by source, parts drawn per row, slots filled vectorised."""
    n = c.height

    def bank(table: dict[str, tuple[str, ...]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        flat: list[str] = []
        off: list[int] = []
        ln: list[int] = []
        for k in CATS:
            off.append(len(flat))
            ln.append(len(table[k]))
            flat.extend(table[k])
        return flat, np.array(off), np.array(ln)

    def pick(options: tuple[str, ...] | list[str]) -> pl.Series:
        return pl.Series(
            np.array(options, dtype=object)[rng.integers(0, len(options), n)], dtype=pl.String
        )

    cat = c["cat"].to_numpy()
    core_flat, core_off, core_len = bank(CORE)
    sys_flat, sys_off, sys_len = bank(SYSTEM_CORE)
    core = np.array(core_flat, dtype=object)[
        core_off[cat] + (rng.random(n) * core_len[cat]).astype(int)
    ]
    sys_core = np.array(sys_flat, dtype=object)[
        sys_off[cat] + (rng.random(n) * sys_len[cat]).astype(int)
    ]
    scam = np.array(SCAM_CORE, dtype=object)[rng.integers(0, len(SCAM_CORE), n)]
    src = c["src"].to_numpy()
    tag = c["tag"].to_numpy()
    system = np.isin(src, AUTOMATED) & (tag != 3)
    associate = ~system & ((src == INTERNAL) | (rng.random(n) < 0.2)) & (tag != 3)
    with_pii = ~system & (rng.random(n) < 0.35)
    area = rng.choice([212, 213, 305, 312, 404, 415, 512, 602, 617, 702, 813, 904], n)
    line = rng.integers(100, 10_000, n)
    phone_fmt = rng.integers(0, 3, n)
    frame = pl.DataFrame(
        {
            "opener": pick(REPORTER_OPENERS),
            "aopen": pick(ASSOCIATE_OPENERS),
            "sopen": pick(SYSTEM_OPENERS),
            "core": pl.Series(core, dtype=pl.String),
            "sys": pl.Series(sys_core, dtype=pl.String),
            "scam": pl.Series(scam, dtype=pl.String),
            "detail": pick(DETAIL),
            "sdetail": pick(SCAM_DETAIL),
            "pii": pick(PII_SENTENCES),
            "closer": pick(CLOSERS),
            "system": system,
            "associate": associate,
            "with_pii": with_pii,
            "tag": tag,
            "area": area,
            "line": line,
            "phone_fmt": phone_fmt,
            "amount": rng.choice([25, 40, 50, 75, 100, 150, 200, 250, 300, 500, 1200], n),
            "k": rng.integers(2, 31, n),
            "when": pick(
                (
                    "yesterday",
                    "last week",
                    "on Monday",
                    "two days ago",
                    "this morning",
                    "over the weekend",
                    "last month",
                    "on Friday",
                )
            ),
        }
    ).hstack(names)

    def cap(e: pl.Expr) -> pl.Expr:
        return pl.concat_str(e.str.slice(0, 1).str.to_uppercase(), e.str.slice(1))

    body = pl.when(pl.col("tag") == 3).then(pl.col("scam")).otherwise(pl.col("core"))
    detail = pl.when(pl.col("tag") == 3).then(pl.col("sdetail")).otherwise(pl.col("detail"))
    opener = pl.when(pl.col("associate")).then(pl.col("aopen")).otherwise(pl.col("opener"))
    run_on = opener.str.ends_with(", ") | opener.str.ends_with(" and ")
    human = pl.concat_str(
        opener,
        pl.when(run_on).then(body).otherwise(cap(body)),
        pl.lit(". "),
        detail,
        pl.when(pl.col("with_pii")).then(pl.col("pii")).otherwise(pl.lit("")),
        pl.col("closer"),
    )
    text = (
        pl.when(pl.col("system"))
        .then(pl.concat_str(pl.col("sopen"), pl.col("sys"), pl.lit(".")))
        .otherwise(human)
    )
    phone = (
        pl.when(pl.col("phone_fmt") == 0)
        .then(pl.format("({}) 555-{}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
        .when(pl.col("phone_fmt") == 1)
        .then(pl.format("{}-555-{}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
        .otherwise(pl.format("+1 {} 555 {}", "area", pl.col("line").cast(pl.String).str.zfill(4)))
    )
    out = frame.select(
        cap(text.str.strip_chars())
        .str.replace_all("{provider}", pl.col("provider"), literal=True)
        .str.replace_all("{name}", pl.col("person"), literal=True)
        .str.replace_all("{email}", pl.col("email"), literal=True)
        .str.replace_all("{phone}", phone, literal=True)
        .str.replace_all("{amount}", pl.format("${}", "amount"), literal=True)
        .str.replace_all("{n}", pl.col("k").cast(pl.String), literal=True)
        .str.replace_all("{when}", pl.col("when"), literal=True)
        .str.replace_all("  ", " ", literal=True)
        .str.replace_all(r" \.", ".")
        .alias("description")
    )
    return out["description"]
