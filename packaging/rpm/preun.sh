# warden %preun: stop and disable on erase (not on upgrade).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl disable --now wardend.service wardend.socket warden-metrics.timer >/dev/null 2>&1 || :
fi
