<footer><?php echo date('Y'); ?> <?= h(SITE_NAME) ?></footer>
</body>
</html>
