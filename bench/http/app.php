<?php

/**
 * The application of the HTTP benchmark and the cutover scenario (bench/http/): every request starts
 * the session, and `hit` reads it and rewrites it, like a shop page that tracks the last visit.
 *
 *   ?a=new&k=K  fill the session with about 1 KB (user, cart, CSRF token, history) and n = 0
 *   ?a=hit      n = n + 1 and a new `seen` value (so the session is always rewritten); answers
 *               {"n": N, "k": K, "h": session.save_handler}, or {"missing": true} when the session
 *               holds nothing (a new or rejected session ID: the user was logged out)
 *   ?a=peek     read only (read_and_close): {"n": N, "k": K, "h": ...} or {"missing": true}
 *
 * session_start() failing answers 503 (the handler logged why to PHP's error log).
 */

declare(strict_types=1);

$action = (string) ($_GET['a'] ?? 'hit');
$started = $action === 'peek' ? @session_start(['read_and_close' => true]) : @session_start();
header('Content-Type: application/json');
header('Cache-Control: no-store');
if ($started === false) {
    http_response_code(503);
    echo json_encode(['error' => 'session_start failed']), "\n";
    exit;
}

if ($action === 'new') {
    $k = (int) ($_GET['k'] ?? 0);
    $cart = [];
    for ($i = 0; $i < 5; $i++) {
        $cart[] = ['sku' => sprintf('SKU-%05d-%d', $k % 100000, $i), 'qty' => ($k + $i) % 5 + 1, 'price' => ($k % 997) / 10 + $i];
    }
    $history = [];
    for ($i = 0; $i < 4; $i++) {
        $history[] = sprintf('/catalog/category-%d/product-%d?ref=home', ($k + $i) % 50, ($k * 7 + $i) % 1000);
    }
    $_SESSION = [
        'user' => ['id' => $k, 'email' => "user{$k}@example.com", 'roles' => ['customer', 'newsletter']],
        'cart' => $cart,
        'csrf' => bin2hex(random_bytes(32)),
        'flash' => ['Your cart was saved successfully'],
        'history' => $history,
        'locale' => 'en_GB',
        'k' => $k,
        'n' => 0,
        'seen' => microtime(true),
    ];
    echo json_encode(['k' => $k, 'n' => 0, 'bytes' => strlen((string) session_encode())]), "\n";
    exit;
}

if (!isset($_SESSION['n'], $_SESSION['k'])) {
    echo json_encode(['missing' => true]), "\n";
    exit;
}
if ($action === 'hit') {
    $_SESSION['n']++;
    $_SESSION['seen'] = microtime(true);
}
echo json_encode(['n' => $_SESSION['n'], 'k' => $_SESSION['k'], 'h' => ini_get('session.save_handler')]), "\n";
