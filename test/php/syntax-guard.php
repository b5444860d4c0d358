<?php

/**
 * Test helper: lists constructs of PHP 8.0+ in a file that must stay PHP 7.4 syntax.
 *
 *   php -n syntax-guard.php FILE
 *
 * Prints a JSON array of findings ("line N: what"); [] when none. Checks tokens that PHP 7.4 cannot
 * parse (match, ?->, enum, readonly, attributes sharing a line with code), union/mixed/never/static
 * types in signatures, constructor promotion, and calls to functions added in PHP 8.
 */

declare(strict_types=1);

$code = (string) file_get_contents($argv[1]);
$findings = [];
$tokens = token_get_all($code);
$php8Functions = ['str_contains', 'str_starts_with', 'str_ends_with', 'get_debug_type', 'fdiv', 'get_resource_id',
    'array_is_list', 'preg_last_error_msg'];
$lines = explode("\n", $code);

foreach ($tokens as $i => $token) {
    if (!is_array($token)) {
        continue;
    }
    [$id, $text, $line] = $token;
    $name = token_name($id);
    if (in_array($name, ['T_MATCH', 'T_NULLSAFE_OBJECT_OPERATOR', 'T_ENUM', 'T_READONLY'], true)) {
        $findings[] = "line $line: $name";
    }
    if ($name === 'T_ATTRIBUTE') {
        // PHP 7.4 reads "#[...]" as a comment up to the end of the line: nothing else may follow it.
        if (preg_match('/^\s*#\[[^\]]*\]\s*$/', $lines[$line - 1]) !== 1) {
            $findings[] = "line $line: attribute not alone on its line";
        }
    }
    if ($name === 'T_STRING' && in_array(strtolower($text), $php8Functions, true)) {
        $findings[] = "line $line: PHP 8 function $text";
    }
}

// Signatures: union types, mixed/never/static types, promoted constructor parameters.
if (preg_match_all('/function\s+&?\s*(\w+)\s*\(([^)]*)\)\s*(?::\s*([^{;]+))?/', $code, $all, PREG_SET_ORDER | PREG_OFFSET_CAPTURE) > 0) {
    foreach ($all as $m) {
        $line = substr_count(substr($code, 0, $m[0][1]), "\n") + 1;
        $params = $m[2][0];
        $return = isset($m[3]) ? trim($m[3][0]) : '';
        if (preg_match('/[\w\\\\]\s*\|\s*[\w\\\\]/', $params . ' ' . $return) === 1) {
            $findings[] = "line $line: union type";
        }
        if (preg_match('/\b(mixed|never)\b/', $params . ' ' . $return) === 1 || $return === 'static') {
            $findings[] = "line $line: PHP 8 type";
        }
        if ($m[1][0] === '__construct' && preg_match('/\b(public|protected|private)\b/', $params) === 1) {
            $findings[] = "line $line: constructor promotion";
        }
    }
}

echo json_encode($findings, JSON_THROW_ON_ERROR), "\n";
