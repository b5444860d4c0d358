<?php
// Shared header: starts the session once for every page that includes it.
if (session_status() !== PHP_SESSION_ACTIVE) {
    session_start();
}
?>
<!DOCTYPE html>
<html>
<head><title><?= h(SITE_NAME) ?></title></head>
<body>
