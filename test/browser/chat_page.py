#!/usr/bin/python3
"""chat_page.py -- the chat page (web/) in headless Chromium against a real relayd.

Usage: chat_page.py SCREENSHOT.png   (env RELAYD_BIN, RELAY_CLI_BIN, WEB_ROOT;
optional RELAY_TEST_GUARD). Starts relayd with --port 0 --ws-port 0 --web-root
WEB_ROOT, opens the page served by relayd in two browsers (alice and bob), both
join a room, each sees the other's presence and messages; relay-cli over plain
TCP in the same room receives a browser's message and a browser receives
relay-cli's. Saves a screenshot of alice's page to SCREENSHOT.png.
Exit status: 0 pass, 1 fail, 77 skip (no chromium, chromedriver or selenium).
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib',
                                'python'))
sys.dont_write_bytecode = True  # nothing written into the source tree
from relayd_proc import start_relayd  # noqa: E402

SKIP = 77
ROOM = 'lobby'
WAIT_S = 15

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    print('SKIP: python3-selenium is not installed')
    sys.exit(SKIP)

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver') or ('/usr/bin/chromedriver'
                                          if os.path.exists('/usr/bin/chromedriver') else None)
if not CHROMIUM or not DRIVER:
    print('SKIP: chromium or chromedriver is not installed')
    sys.exit(SKIP)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
              '--window-size=900,640'):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def wait(drv, what, cond):
    try:
        return WebDriverWait(drv, WAIT_S).until(lambda d: cond(d))
    except Exception as e:
        raise AssertionError(f'timed out waiting for {what}') from e


def log_texts(drv, selector):
    return [e.text for e in drv.find_elements(By.CSS_SELECTOR, f'#log {selector}')]


def login(drv, url, name):
    drv.get(url)
    drv.find_element(By.ID, 'name').send_keys(name)
    first = drv.find_element(By.ID, 'first-room')
    first.clear()
    first.send_keys(ROOM)
    drv.find_element(By.ID, 'login-go').click()
    wait(drv, f'{name}: chat view', lambda d: d.find_element(By.ID, 'chat').is_displayed())
    wait(drv, f'{name}: state open', lambda d: d.find_element(By.ID, 'state').text == 'open')
    wait(drv, f'{name}: joined {ROOM}',
         lambda d: f'you joined {ROOM}' in log_texts(d, 'li.note'))


def send(drv, text):
    box = drv.find_element(By.ID, 'text')
    wait(drv, 'message box enabled', lambda d: box.is_enabled())
    box.send_keys(text)
    drv.find_element(By.ID, 'send').click()


def sees_message(drv, who, text):
    wait(drv, f'message {text!r}', lambda d: text in log_texts(d, 'li.msg .body'))


def main():
    shot = sys.argv[1] if len(sys.argv) > 1 else 'chat-page.png'
    cli = os.environ['RELAY_CLI_BIN']
    proc, tcp_port, ws_port = start_relayd(['--web-root', os.environ['WEB_ROOT']])
    url = f'http://127.0.0.1:{ws_port}/'
    drivers = []
    sub = None
    try:
        alice = browser()
        drivers.append(alice)
        bob = browser()
        drivers.append(bob)
        login(alice, url, 'alice')
        login(bob, url, 'bob')
        wait(alice, 'bob joined (presence)', lambda d: 'bob joined' in log_texts(d, 'li.note'))

        send(alice, 'hello from alice')
        sees_message(bob, 'alice', 'hello from alice')
        sees_message(alice, 'alice', 'hello from alice')  # echo: on
        send(bob, 'hi alice, bob here')
        sees_message(alice, 'bob', 'hi alice, bob here')

        # A plain TCP client in the same room: relay-cli sub / pub.
        sub = subprocess.Popen([cli, '--port', str(tcp_port), '--user', 'cli', '--json',
                                'sub', ROOM, '--count', '1', '--timeout', str(WAIT_S)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait(bob, 'cli joined (presence)', lambda d: 'cli joined' in log_texts(d, 'li.note'))
        send(bob, 'to the terminal')
        out, err = sub.communicate(timeout=WAIT_S + 5)
        assert sub.returncode == 0, f'relay-cli sub failed ({sub.returncode}): {err}'
        got = json.loads(out.strip().splitlines()[-1])
        assert got.get('content') == 'to the terminal', f'relay-cli sub got {out!r}'
        assert got.get('userId') == 'bob', f'relay-cli sub got {out!r}'

        pub = subprocess.run([cli, '--port', str(tcp_port), '--user', 'term',
                              'pub', ROOM, 'from the terminal'],
                             capture_output=True, text=True, timeout=WAIT_S)
        assert pub.returncode == 0, f'relay-cli pub failed: {pub.stderr}'
        sees_message(alice, 'term', 'from the terminal')
        sees_message(bob, 'term', 'from the terminal')
        who = [e.text for e in alice.find_elements(By.CSS_SELECTOR, '#log li.msg .who')]
        assert who[-1].startswith('term'), f'sender shown as {who[-1]!r}'

        rtt = wait(alice, 'an rtt', lambda d: re.match(r'^\d+ ms$', d.find_element(By.ID, 'rtt').text))
        assert rtt
        alice.save_screenshot(shot)
        print(f'screenshot: {shot}')
        print('PASS')
        return 0
    finally:
        if sub and sub.poll() is None:
            sub.kill()
        for d in drivers:
            try:
                d.quit()
            except Exception:
                pass
        proc.kill()
        proc.wait()


if __name__ == '__main__':
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
