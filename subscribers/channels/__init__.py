"""Team chats: each approved issue posted to Slack and Discord webhooks and Telegram chats.

- `messages.py`: the issue as each service's message (Slack Block Kit, Discord embeds, Telegram
  HTML in parts of at most 4,096 characters), text from the LLM and the feeds escaped per format.
- `transports.py`: one post to a service (`channel_post`), what it answered (`PostResult`: sent,
  retry after, revoked), and the pace each service allows. No database.
- `telegram_bot.py`: the bot's commands (/subscribe, /categories, /stop) from Telegram's webhook.
- `services.py`: a reader's channels (add, confirm with the test message's code, remove).

The send of channels is part of the send engine (`subscribers/sending/channels.py`).
"""
