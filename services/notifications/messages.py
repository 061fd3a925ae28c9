"""The member mails' words, per language: subject, plain text and HTML body of each kind.

Templates are `string.Template`s (`$name` placeholders): the mails are a few sentences with a
handful of values, no loops or conditions beyond "a transfer may carry a message", which the
renderer fills in as a ready-made block. That needs no template engine (jinja2 would add a
dependency and a sandbox to think about for nothing). `render.py` escapes every value for the
HTML part; a template's own markup is trusted. A missing placeholder is a KeyError at render time
(a test renders every kind in every language).

Languages: English (the fallback), French and Dutch. Adding one is adding its dictionaries here
(and its month names and number format in `render.py`).
"""

from __future__ import annotations

from services.notifications.models import NotificationKind

Parts = tuple[str, str, str]  # subject, text, html body (inside the layout)

DEFAULT_LANGUAGE = "en"

LAYOUT = """<!doctype html>
<html lang="$lang"><head><meta charset="utf-8"><title>$subject</title></head>
<body style="font-family: sans-serif; color: #222; max-width: 36em; margin: auto">
$body
<p style="color: #777; font-size: small">$footer</p>
</body></html>
"""

FOOTER = {
    "en": "You get this mail as a member of the coalition ($member_number)."
    " You can turn such mails off in the app's settings.",
    "fr": "Vous recevez ce message en tant que membre de la coalition ($member_number)."
    " Vous pouvez désactiver ces messages dans les réglages de l'application.",
    "nl": "U ontvangt deze mail als lid van de coalitie ($member_number)."
    " U kunt zulke mails uitzetten in de instellingen van de app.",
}

MESSAGES: dict[str, dict[NotificationKind, Parts]] = {
    "en": {
        NotificationKind.TIER_UP: (
            "Welcome to $tier!",
            "Congratulations: you have reached the $tier tier.\n\n"
            "Your $qualifying_points qualifying points earned you better rewards at every partner.\n",
            "<h1>Welcome to $tier!</h1><p>Congratulations: you have reached the <b>$tier</b> tier.</p>"
            "<p>Your $qualifying_points qualifying points earned you better rewards at every partner.</p>",
        ),
        NotificationKind.REWARD_VOUCHER: (
            "Your voucher for $reward",
            "Thank you for redeeming $points points for $reward.\n\nYour voucher code: $code\n\n"
            "Show this code to redeem your reward.\n",
            "<h1>Your voucher for $reward</h1><p>Thank you for redeeming $points points for"
            ' $reward.</p><p>Your voucher code: <b style="font-size: large">$code</b></p>'
            "<p>Show this code to redeem your reward.</p>",
        ),
        NotificationKind.TRANSFER_RECEIVED: (
            "You received $points points",
            "Member $sender sent you $points points.\n$message_text\n"
            "They are in your balance now, with their original expiry dates.\n",
            "<h1>You received $points points</h1><p>Member $sender sent you $points points.</p>"
            "$message_html<p>They are in your balance now, with their original expiry dates.</p>",
        ),
        NotificationKind.POINTS_EXPIRING: (
            "$points points expire on $date",
            "$points of your points expire on $date.\n\n"
            "Spend them at any partner of the coalition before then to keep their value.\n",
            "<h1>$points points expire on $date</h1><p>$points of your points expire on"
            " <b>$date</b>.</p><p>Spend them at any partner of the coalition before then to keep"
            " their value.</p>",
        ),
    },
    "fr": {
        NotificationKind.TIER_UP: (
            "Bienvenue au niveau $tier !",
            "Félicitations : vous avez atteint le niveau $tier.\n\n"
            "Vos $qualifying_points points qualifiants vous valent de meilleurs avantages chez tous"
            " nos partenaires.\n",
            "<h1>Bienvenue au niveau $tier !</h1><p>Félicitations : vous avez atteint le niveau"
            " <b>$tier</b>.</p><p>Vos $qualifying_points points qualifiants vous valent de meilleurs"
            " avantages chez tous nos partenaires.</p>",
        ),
        NotificationKind.REWARD_VOUCHER: (
            "Votre bon pour $reward",
            "Merci d'avoir échangé $points points contre $reward.\n\nVotre code : $code\n\n"
            "Présentez ce code pour obtenir votre récompense.\n",
            "<h1>Votre bon pour $reward</h1><p>Merci d'avoir échangé $points points contre"
            ' $reward.</p><p>Votre code : <b style="font-size: large">$code</b></p>'
            "<p>Présentez ce code pour obtenir votre récompense.</p>",
        ),
        NotificationKind.TRANSFER_RECEIVED: (
            "Vous avez reçu $points points",
            "Le membre $sender vous a envoyé $points points.\n$message_text\n"
            "Ils sont déjà sur votre solde, avec leurs dates d'expiration d'origine.\n",
            "<h1>Vous avez reçu $points points</h1><p>Le membre $sender vous a envoyé $points"
            " points.</p>$message_html<p>Ils sont déjà sur votre solde, avec leurs dates"
            " d'expiration d'origine.</p>",
        ),
        NotificationKind.POINTS_EXPIRING: (
            "$points points expirent le $date",
            "$points de vos points expirent le $date.\n\n"
            "Utilisez-les chez un partenaire de la coalition d'ici là pour en garder la valeur.\n",
            "<h1>$points points expirent le $date</h1><p>$points de vos points expirent le"
            " <b>$date</b>.</p><p>Utilisez-les chez un partenaire de la coalition d'ici là pour en"
            " garder la valeur.</p>",
        ),
    },
    "nl": {
        NotificationKind.TIER_UP: (
            "Welkom in $tier!",
            "Gefeliciteerd: u hebt het niveau $tier bereikt.\n\n"
            "Met uw $qualifying_points kwalificerende punten krijgt u meer bij elke partner.\n",
            "<h1>Welkom in $tier!</h1><p>Gefeliciteerd: u hebt het niveau <b>$tier</b> bereikt.</p>"
            "<p>Met uw $qualifying_points kwalificerende punten krijgt u meer bij elke partner.</p>",
        ),
        NotificationKind.REWARD_VOUCHER: (
            "Uw waardebon voor $reward",
            "Bedankt voor het inwisselen van $points punten voor $reward.\n\nUw code: $code\n\n"
            "Toon deze code om uw beloning te krijgen.\n",
            "<h1>Uw waardebon voor $reward</h1><p>Bedankt voor het inwisselen van $points punten voor"
            ' $reward.</p><p>Uw code: <b style="font-size: large">$code</b></p>'
            "<p>Toon deze code om uw beloning te krijgen.</p>",
        ),
        NotificationKind.TRANSFER_RECEIVED: (
            "U hebt $points punten ontvangen",
            "Lid $sender heeft u $points punten gestuurd.\n$message_text\n"
            "Ze staan nu op uw saldo, met hun oorspronkelijke vervaldatums.\n",
            "<h1>U hebt $points punten ontvangen</h1><p>Lid $sender heeft u $points punten"
            " gestuurd.</p>$message_html<p>Ze staan nu op uw saldo, met hun oorspronkelijke"
            " vervaldatums.</p>",
        ),
        NotificationKind.POINTS_EXPIRING: (
            "$points punten vervallen op $date",
            "$points van uw punten vervallen op $date.\n\n"
            "Gebruik ze voor die datum bij een partner van de coalitie.\n",
            "<h1>$points punten vervallen op $date</h1><p>$points van uw punten vervallen op"
            " <b>$date</b>.</p><p>Gebruik ze voor die datum bij een partner van de coalitie.</p>",
        ),
    },
}

# How a transfer's message is quoted, when it has one.
TRANSFER_MESSAGE = {
    "en": ("Their message: “$message”\n", "<p>Their message: <i>“$message”</i></p>"),
    "fr": ("Son message : « $message »\n", "<p>Son message : <i>« $message »</i></p>"),
    "nl": ("Hun bericht: “$message”\n", "<p>Hun bericht: <i>“$message”</i></p>"),
}

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
}

THOUSANDS = {"en": ",", "fr": "\u202f", "nl": "."}
