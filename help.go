package main

// helpText is the help of a command, or the general help for "".
func helpText(topic string) string {
	if t, ok := commandHelp[topic]; ok {
		return t + "\n" + flagsHelp
	}
	return generalHelp + "\n" + flagsHelp + "\n" + footerHelp
}

const generalHelp = `prusa-credential-helper gives programs a fresh Prusa Connect access token.

Usage:
  prusa-credential-helper [flags] COMMAND [flags]

Commands for programs (one JSON document on stdout, on success and on error;
get --format token, header or env prints nothing on stdout on error):
  get       print a valid access token, refreshing it first if needed
  token     print the bare access token (get --format token)
  store     store the token set read from stdin
  erase     remove the profile's tokens from every store
  list      list the stored profiles, without secrets

Commands for people:
  login     log in with email, password and TOTP code (once)
  logout    remove the profile's tokens from every store
  status    show who is logged in and when the tokens expire
  refresh   refresh the tokens now (--all --within DURATION: for timers)
  version   print the version
  help      show this help, or a command's: help COMMAND

Command flags: get --format json|token|header|env; status and version --json;
login --email E --password-stdin; refresh --all --within DURATION.
See: prusa-credential-helper help COMMAND.
`

const flagsHelp = `Flags (each also an environment variable; the flag wins):
  --profile NAME       stored account (PRUSA_PROFILE; default "default")
  --store MODE         auto, keyring, file or etcd://HOST:PORT[,HOST:PORT...]/PREFIX
                       (PRUSA_CREDENTIAL_STORE; default auto)
  --token-file PATH    use exactly this token file (PRUSA_TOKEN_FILE)
  --account-url URL    account server (PRUSA_ACCOUNT_URL; default https://account.prusa3d.com)
  --client-id ID       OAuth client ID (PRUSA_CLIENT_ID)
  --redirect-uri URI   OAuth redirect URI (PRUSA_REDIRECT_URI)
  --timeout DURATION   budget for network and lock waits (PRUSA_HELPER_TIMEOUT;
                       default 20s; login, and get or refresh with --auto-login,
                       120s)
  --debug              redacted diagnostics on stderr (PRUSA_HELPER_DEBUG=1)
  --auto-login         get logs in from PRUSA_EMAIL, PRUSA_PASSWORD and PRUSA_TOTP_SECRET
                       instead of answering login_required (PRUSA_AUTO_LOGIN=1)
  --save-command CMD   run CMD, without a shell, with each newly saved token set on
                       stdin (PRUSA_SAVE_COMMAND)
  --etcd-cacert FILE, --etcd-cert FILE, --etcd-key FILE, --etcd-user USER:PASSWORD
                       TLS and auth of an etcd:// store (PRUSA_ETCD_CACERT, ...)
  --version            print the version
`

const footerHelp = `Tokens come from PRUSA_TOKENS_JSON, else PRUSA_TOKEN, else the store.
Exit codes: 0 success, 1 storage or internal error, 2 invalid request or usage,
4 login required, 75 temporary failure (network, timeout, server): retry later.
`

var commandHelp = map[string]string{
	"get": `Usage: prusa-credential-helper get [--format json|token|header|env] [flags] < request

Prints an access token valid for more than max(60s, min_ttl), refreshing it
first if needed. Never prompts. stdin is empty or one JSON request:
  {"version": 1, "profile": "default", "min_ttl": 300, "force_refresh": false}

  --format json     {"version":1,"success":true,...,"access_token":...} (default)
  --format token    the token and a newline
  --format header   Authorization: Bearer <token>
  --format env      PRUSA_TOKEN=<token>
On error, --format json prints {"version":1,"success":false,"code":...} on
stdout; token, header and env print nothing on stdout (so $(...) is empty).
Either way the message is on stderr and the exit code says what failed:
2 invalid request, 4 login required, 75 try again later, 1 anything else.
`,
	"token": `Usage: prusa-credential-helper token [flags]

Prints the bare access token and a newline: get --format token.
`,
	"store": `Usage: prusa-credential-helper store [flags] < token-set.json

Stores a token set (the Python SDK's dump_tokens() JSON, optionally with
"profile") after checking every JWT in it.
`,
	"erase": `Usage: prusa-credential-helper erase [flags] [< {"profile": "..."}]

Removes the profile's token set from every store. Succeeds when nothing is
stored too ("erased": false).
`,
	"list": `Usage: prusa-credential-helper list [flags]

Lists the stored profiles with their user, email, store and expiry times.
Never a token.
`,
	"login": `Usage: prusa-credential-helper login [--email E] [--password-stdin] [flags]

Logs in to a Prusa Account once and stores the tokens.
  email      --email, else PRUSA_EMAIL, else a prompt
  password   --password-stdin (first line of stdin), else PRUSA_PASSWORD, else a prompt
  TOTP code  PRUSA_TOTP_CODE, else computed from PRUSA_TOTP_SECRET, else a prompt
Prompts use the terminal, never stdout.
`,
	"logout": `Usage: prusa-credential-helper logout [flags]

Removes the profile's tokens from every store that holds them, whatever
--store says (with --token-file: that file alone), and names them (erase,
for people).
`,
	"status": `Usage: prusa-credential-helper status [--json] [flags]

Shows who is logged in, when the access and refresh tokens expire, and where
they are stored. Exits 4 when only a new login can give a token.
`,
	"refresh": `Usage: prusa-credential-helper refresh [--all [--within DURATION]] [flags]

Refreshes the profile's tokens now. With --all, refreshes every stored
profile (with --within, only those whose refresh token expires within
DURATION, such as 72h), for cron and systemd timers. Writes a line per
profile on stderr; exits 4 if any profile needs a login, or if none is
stored.
`,
	"version": `Usage: prusa-credential-helper version [--json]

Prints the version and the protocol version.
`,
	"help": `Usage: prusa-credential-helper help [COMMAND]

Shows the help of the program, or of one command.
`,
}
