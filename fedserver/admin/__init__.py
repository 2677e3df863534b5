"""The admin pages (/admin): log in as an administrator, see and resolve rewards alerts.

Server-rendered HTML in Korean and English that works without JavaScript. Only
accounts with the role `admin` (`fedserver account role NAME admin`) get in.
"""
