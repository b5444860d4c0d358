<?php
// Prints every registered directive as JSON {name: [extension, global_value|null, access]}.
// Run by gen-directives.sh under php-cgi -n (no CLI overrides) and php -n with shared extensions.
$out = [];
foreach (ini_get_all(null, true) as $k => $d) {
    $out[$k] = ['Core', $d['global_value'], $d['access']];
}
foreach (get_loaded_extensions() as $ext) {
    $all = @ini_get_all($ext, true);
    foreach ($all ?: [] as $k => $d) {
        $out[$k][0] = $ext;
    }
}
ksort($out, SORT_STRING);
echo "\n@@BEGIN@@\n", json_encode(['sapi' => PHP_SAPI, 'version' => PHP_VERSION, 'directives' => $out], JSON_UNESCAPED_SLASHES), "\n";
