<?php
// Loaded first by every page.
error_reporting(E_ALL);
require_once __DIR__ . '/config.php';
require_once __DIR__ . '/../lib/functions.php';
